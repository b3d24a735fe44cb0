"""`neuralc run -O2`: the training graph is optimized too (fused kernels, dropout kept) and a
softmax output with a cross-entropy loss trains on the logits the graph now returns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neuralc.cli import main

MODEL = """network Clf {
  input: (8, 16)
  layers:
    TransformerEncoder(num_heads=2, dff=32)
    GlobalAveragePooling1D()
    Dropout(0.1)
    Output(3, activation="softmax")
  loss: "sparse_categorical_crossentropy"
  optimizer: Adam(learning_rate=0.003)
  train {
    epochs: 4
    batch_size: 16
  }
}
"""


def test_run_at_o2_trains_the_fused_graph_on_logits(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "clf.neural"
    model.write_text(MODEL)
    out = tmp_path / "run"
    metrics = tmp_path / "m.json"
    code = main(["run", str(model), "--synthetic", "96", "--target", "pytorch", "-O", "2",
                 "--output-dir", str(out), "--metrics-json", str(metrics), "--seed", "1"])
    err = capsys.readouterr().err
    assert code == 0, err
    artifact = (out / "clf_pytorch.py").read_text()
    assert "attention(" in artifact and "feed_forward(" in artifact  # kernel ops
    assert '"loss_input": "output_logits"' in artifact  # fuse-softmax-cross-entropy
    assert "F.dropout" in artifact  # a training graph keeps its dropout
    assert "no nn.Linear" not in err
    losses = [epoch["train_loss"] for epoch in json.loads(metrics.read_text())["epochs"]]
    assert losses[-1] < losses[0]
