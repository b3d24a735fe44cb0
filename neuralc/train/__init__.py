"""Training and hyperparameter search: `neuralc run` and `neuralc tune`.

`data` reads and checks datasets (and makes synthetic ones), `runner` builds a network's
artifact with the ordinary build machinery and trains *that file*, `space` and `hpo` turn the
program's `HPO(...)` expressions into an Optuna study and write the resolved `.neural` file,
`report` prints tables and writes metrics JSON. The training loops themselves are the
standalone templates `neuralc.lower.train_torch` / `train_keras` (see docs/training.md).
"""
