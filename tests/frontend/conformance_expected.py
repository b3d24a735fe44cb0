"""What each conformance file parses to, as `frontend_testlib.dump` writes it.

Checked by hand against each file's text. A layer is in canonical one-line form; bare names stay
bare (`loss: categorical_crossentropy`), strings quoted, `(3)` in a shape reads as `(3,)`.
"""

EXPECTED: dict[str, str] = {
    "seed/bert_encoder.neural": """\
network BERTEncoder
  input: (512, 768)
  layer: TransformerEncoder(num_heads=12, d_model=768, dff=3072) * 12
  layer: GlobalAveragePooling1D()
  layer: Output(2, activation="softmax")
  loss: "categorical_crossentropy"
  optimizer: Adam(learning_rate=2e-05)
  train { epochs: 3; batch_size: 32 }
""",
    "seed/custom_attention.neural": """\
network CustomAttention
  input: (100, 128)
  layer: MultiHeadAttention(num_heads=8, key_dim=64)
  layer: LayerNormalization()
  layer: Dense(512, activation="relu")
  layer: Dense(128)
  layer: LayerNormalization()
  layer: Dropout(0.1)
  layer: Output(10, activation="softmax")
  loss: "categorical_crossentropy"
  optimizer: Adam(learning_rate=0.001)
  train { epochs: 20; batch_size: 32 }
""",
    "seed/fragments_combined.neural": """\
network FragmentsModel
  input: (512, 768)
  layer: TransformerEncoder(num_heads=8, d_model=768, dff=2048) @ "cuda:0"
  layer: GlobalAveragePooling1D()
  layer: Output(10, activation="softmax")
  loss: "sparse_categorical_crossentropy"
  optimizer: Adam(learning_rate=ExponentialDecay(0.0001, 10000, 0.96), beta_1=0.9, beta_2=0.999, epsilon=1e-08)
  train { epochs: 20; batch_size: 32; validation_split: 0.2; early_stopping_patience: 3; checkpoint_path: "best_model.h5" }
  execution { device: "cuda:0"; mixed_precision: true }
""",
    "seed/gpt_decoder.neural": """\
network GPTDecoder
  input: (1024, 768)
  layer: TransformerDecoder(num_heads=12, d_model=768, dff=3072) * 12
  layer: Dense(50257, activation="softmax")
  loss: "sparse_categorical_crossentropy"
  optimizer: Adam(learning_rate=ExponentialDecay(0.0006, 10000, 0.95), beta_1=0.9, beta_2=0.95)
  train { epochs: 10; batch_size: 8 }
""",
    "seed/hpo_transformer.neural": """\
network HPOModel
  input: (512, 768)
  layer: TransformerEncoder(num_heads=HPO(choice(8, 12, 16)), d_model=768, dff=HPO(choice(2048, 3072, 4096)), dropout_rate=HPO(range(0.1, 0.3, step=0.05))) * HPO(choice(6, 12))
  layer: GlobalAveragePooling1D()
  layer: Output(10, activation="softmax")
  optimizer: Adam(learning_rate=HPO(log_range(1e-05, 0.001)))
  train { epochs: 10; batch_size: HPO(choice(16, 32, 64)); search_method: "bayesian"; num_trials: 50 }
""",
    "seed/seq2seq_fixed.neural": """\
network Seq2SeqTransformerFixed
  input: (100,)
  layer: Embedding(input_dim=10000, output_dim=512)
  layer: TransformerEncoder(num_heads=8, d_model=512, dff=2048) * 6
  layer: TransformerDecoder(num_heads=8, d_model=512, dff=2048) * 6
  layer: Dense(10000, activation="softmax")
  loss: "sparse_categorical_crossentropy"
  optimizer: Adam(learning_rate=0.0001)
  train { epochs: 20; batch_size: 64 }
""",
    "seed/seq2seq_verbatim.neural": """\
network Seq2SeqTransformer
  input: (100, 512)
  layer: Embedding(input_dim=10000, output_dim=512)
  layer: TransformerEncoder(num_heads=8, d_model=512, dff=2048) * 6
  layer: TransformerDecoder(num_heads=8, d_model=512, dff=2048) * 6
  layer: Dense(10000, activation="softmax")
  loss: "sparse_categorical_crossentropy"
  optimizer: Adam(learning_rate=0.0001)
  train { epochs: 20; batch_size: 64 }
""",
    "seed/transformer_pt.neural": """\
network TransformerModel
  input: (512, 768)
  layer: TransformerEncoder(num_heads=8, d_model=768, dff=2048) * 6
  layer: GlobalAveragePooling1D()
  layer: Output(10, activation="softmax")
  loss: "cross_entropy"
  optimizer: Adam(learning_rate=0.0001)
  train { epochs: 20; batch_size: 32 }
""",
    "seed/transformer_tf.neural": """\
network TransformerModel
  input: (512, 768)
  layer: TransformerEncoder(num_heads=8, d_model=768, dff=2048)
  layer: GlobalAveragePooling1D()
  layer: Output(10, activation="softmax")
  loss: "sparse_categorical_crossentropy"
  optimizer: Adam(learning_rate=0.0001)
  train { epochs: 20; batch_size: 32; validation_split: 0.2 }
""",
    "seed/vision_transformer.neural": """\
network VisionTransformer
  input: (224, 224, 3)
  layer: Conv2D(768, kernel_size=(16, 16), strides=16, padding="valid")
  layer: Reshape(target_shape=(196, 768))
  layer: TransformerEncoder(num_heads=12, d_model=768, dff=3072) * 12
  layer: GlobalAveragePooling1D()
  layer: Dense(1000, activation="softmax")
  loss: "categorical_crossentropy"
  optimizer: Adam(learning_rate=0.0001)
  train { epochs: 100; batch_size: 64 }
""",
    "upstream/Lambda-sec_Models__MathLang__Newton.neural": """\
network MathTransformer
  input: (None, 512)
  layer: TransformerEncoder(num_heads=8, ff_dim=2048, dropout=0.1) * 3
  layer: Dense(512, activation="relu")
  layer: Output(units=10, activation="softmax")
  loss: "categorical_crossentropy"
  optimizer: Adam(learning_rate=0.0001)
  train { epochs: 50; batch_size: 64; validation_split: 0.2 }
""",
    "upstream/Lambda-sec_Models__Transformer__transformer.neural": """\
network TransformerModel
  input: (None, 128, 512)
  layer: TransformerEncoder(num_heads=8, ff_dim=2048, dropout=0.1) * 6
  layer: GlobalAveragePooling1D()
  layer: Dense(units=256, activation="relu")
  layer: Output(units=10, activation="softmax")
  loss: "categorical_crossentropy"
  optimizer: Adam(learning_rate=0.0001)
  train { epochs: 20; batch_size: 64; validation_split: 0.2 }
""",
    "upstream/examples__LayersMultiplication+NestedLayers.neural": """\
macro MyBlock
  Conv2D(32, (3, 3), activation="relu")
  MaxPooling2D((2, 2))
network MyNetwork
  input: (28, 28, 1)
  layer: MyBlock() * 3
""",
    "upstream/examples__Neural_Networks_From_Scratch_In_Python__three_inputs_neuron.neural": """\
network ThreeInputNeuron
  input: (3,)
  layer: Dense(1, "linear")
network ThreeInputNeuron
  input: (3,)
  layer: Dense(units=1, activation="linear", use_bias=true)
""",
    "upstream/examples__advanced_hpo_v0.2.5.neural": """\
network AdvancedHPOExample
  input: (28, 28, 1)
  layer: Conv2D(filters=HPO(choice(32, 64)), kernel_size=(3, 3), activation="relu")
  layer: MaxPooling2D(pool_size=(2, 2))
  layer: Conv2D(filters=HPO(choice(64, 128)), kernel_size=(3, 3), activation="relu")
  layer: MaxPooling2D(pool_size=(2, 2))
  layer: Flatten()
  layer: Dense(HPO(choice(128, 256, 512)), activation="relu")
  layer: Dropout(HPO(range(0.3, 0.7, step=0.1)))
  layer: Output(10, "softmax")
  optimizer: SGD(learning_rate=ExponentialDecay(HPO(range(0.05, 0.2, step=0.05)), 1000, HPO(range(0.9, 0.99, step=0.01))), momentum=HPO(range(0.8, 0.99, step=0.01)))
  train { epochs: 20; batch_size: HPO(choice(32, 64, 128)); validation_split: 0.2; search_method: "bayesian" }
  execution { device: "auto" }
""",
    "upstream/examples__example.neural": """\
network MyModel
  input: (None, 28, 28)
  layer: Dense(128, activation="relu")
  layer: Dropout(rate=0.2)
  layer: Output(units=10, activation="softmax")
  loss: "categorical_crossentropy"
  optimizer: "Adam"
""",
    "upstream/examples__gpu.neural": """\
network MyModel
  input: (28, 28, 1)
  layer: Conv2D(filters=64, kernel_size=(3, 3), activation="relu")
  layer: MaxPooling2D(pool_size=(2, 2))
  layer: Flatten()
  layer: Dense(units=128, activation="relu")
  layer: Output(units=10, activation="softmax")
  loss: "categorical_crossentropy"
  optimizer: "adam"
  execution { device: "gpu" }
""",
    "upstream/examples__layer_multiplication.neural": """\
network SimpleMultipliedNet
  input: (None, 32)
  layer: Dense(64, "relu") * 3
  layer: Dropout(0.5)
  layer: Dense(10, "softmax")
  loss: categorical_crossentropy
  optimizer: Adam
  train { epochs: 10; batch_size: 32; validation_split: 0.2 }
  execution { device: "cpu" }
""",
    "upstream/examples__macros.neural": """\
macro ConvBlock
  Conv2D(32, 3, activation="relu")
  BatchNormalization()
network MyNet
  input: (28, 28, 1)
  layer: ConvBlock
  layer: Dropout(0.5)
""",
    "upstream/examples__mnist.neural": """\
network MNISTClassifier
  input: (None, 28, 28, 1)
  layer: Conv2D(filters=32, kernel_size=(3, 3), activation="relu")
  layer: MaxPooling2D(pool_size=(2, 2))
  layer: Flatten()
  layer: Dense(units=128, activation="relu")
  layer: Dropout(rate=0.5)
  layer: Output(units=10, activation="softmax")
  loss: "sparse_categorical_crossentropy"
  optimizer: Adam(learning_rate=0.001)
  train { epochs: 15; batch_size: 64; validation_split: 0.2 }
""",
    "upstream/examples__mnist_2.neural": """\
network MNISTClassifier
  input: (28, 28, 1)
  layer: Conv2D(filters=32, kernel_size=(3, 3), activation="relu")
  layer: MaxPooling2D(pool_size=(2, 2))
  layer: Flatten()
  layer: Dense(HPO(choice(128, 256, 512)), activation="relu")
  layer: Dropout(HPO(range(0.3, 0.7, step=0.1)))
  layer: Output(units=10, activation="softmax")
  loss: "sparse_categorical_crossentropy"
  optimizer: Adam(learning_rate=HPO(log_range(0.0001, 0.01)))
  train { epochs: 15; batch_size: HPO(choice(32, 64, 128)); validation_split: 0.2; search_method: "bayesian" }
  execute { device: "cuda" }
""",
    "upstream/examples__mnist_hpo.neural": """\
network MNISTClassifier
  input: (28, 28, 1)
  layer: Dense(HPO(choice(128, 256)))
  layer: Dropout(HPO(range(0.3, 0.7, step=0.1)))
  layer: Output(10, "softmax")
  optimizer: Adam(learning_rate=HPO(log_range(0.0001, 0.01)))
  train { epochs: 10; search_method: "bayesian" }
""",
    "upstream/examples__nested_layers.neural": """\
network ViT
  input: (224, 224, 3)
  layer: Conv2D(64, (7, 7), strides=2) @ "cuda:0"
  layer: TransformerEncoder(num_heads=8, ff_dim=512) { Conv2D(32, (3, 3)) Dense(128) } * 12
  layer: GlobalAveragePooling2D()
  layer: Dense(1000, "softmax")
  loss: "categorical_crossentropy"
  optimizer: "Adam(learning_rate=1e-4)"
  train { epochs: 300; batch_size: HPO(range(128, 512, step=64)) }
""",
    "upstream/examples__sentiment.neural": """\
network SentimentAnalyzer
  input: (100, 300)
  layer: Embedding(input_dim=10000, output_dim=300)
  layer: LSTM(units=128, return_sequences=true)
  layer: LSTM(units=64)
  layer: Dense(units=32, activation="relu")
  layer: Output(units=2, activation="softmax")
  loss: "binary_crossentropy"
  optimizer: Adam(learning_rate=0.001)
  train { epochs: 10; batch_size: 32 }
""",
    "upstream/examples__tiny.neural": """\
network Tiny
  input: (28, 28, 1)
  layer: Output(10)
""",
    "upstream/examples__transformer.neural": """\
network TransformerModel
  input: (100, 512)
  layer: Embedding(input_dim=10000, output_dim=512)
  layer: TransformerEncoder(num_heads=8, ff_dim=2048)
  layer: GlobalAveragePooling1D()
  layer: Dense(units=128, activation="relu")
  layer: Output(units=10, activation="softmax")
  loss: "sparse_categorical_crossentropy"
  optimizer: Adam(learning_rate=0.0001)
  train { epochs: 20; batch_size: 64 }
""",
    "upstream/neuralpaper__backend__models__resnet.neural": """\
network ResNet18
  input: (224, 224, 3)
  layer: Conv2D(filters=64, kernel_size=(7, 7), strides=(2, 2), padding="same", activation="relu")
  layer: MaxPooling2D(pool_size=(3, 3), strides=(2, 2), padding="same")
  layer: ResidualConnection { Conv2D(filters=64, kernel_size=(3, 3), padding="same", activation="relu") Conv2D(filters=64, kernel_size=(3, 3), padding="same") }
  layer: Activation("relu")
  layer: ResidualConnection { Conv2D(filters=64, kernel_size=(3, 3), padding="same", activation="relu") Conv2D(filters=64, kernel_size=(3, 3), padding="same") }
  layer: Activation("relu")
  layer: ResidualConnection { Conv2D(filters=128, kernel_size=(3, 3), strides=(2, 2), padding="same", activation="relu") Conv2D(filters=128, kernel_size=(3, 3), padding="same") Conv2D(filters=128, kernel_size=(1, 1), strides=(2, 2), padding="same") }
  layer: Activation("relu")
  layer: ResidualConnection { Conv2D(filters=128, kernel_size=(3, 3), padding="same", activation="relu") Conv2D(filters=128, kernel_size=(3, 3), padding="same") }
  layer: Activation("relu")
  layer: GlobalAveragePooling2D()
  layer: Dense(units=1000, activation="softmax")
  loss: "categorical_crossentropy"
  optimizer: Adam(learning_rate=0.001)
  metrics: ["accuracy"]
""",
    "upstream/tests__parser__test_macro.py__ResBlock.neural": """\
macro ResBlock
  Conv2D(64, (3, 3))
  BatchNormalization()
  ResidualConnection() { Dense(128) Dropout(0.3) }
""",
    "upstream/tests__parser__test_networks.py__ActivationHPOModel.neural": """\
network ActivationHPOModel
  input: (28, 28, 1)
  layer: Conv2D(32, (3, 3), activation=HPO(choice("relu", "elu", "selu")))
  layer: MaxPooling2D((2, 2))
  layer: Flatten()
  layer: Dense(128, activation=HPO(choice("relu", "tanh", "sigmoid")))
  layer: Dense(10, "softmax")
  optimizer: Adam(learning_rate=HPO(log_range(0.0001, 0.01)))
  train { epochs: 10; batch_size: HPO(choice(32, 64, 128)); search_method: "bayesian" }
""",
    "upstream/tests__parser__test_networks.py__DevicePlacementModel.neural": """\
network DevicePlacementModel
  input: (28, 28, 1)
  layer: Conv2D(32, (3, 3), "relu") @ "cuda:0"
  layer: MaxPooling2D((2, 2)) @ "cuda:0"
  layer: Flatten() @ "cuda:1"
  layer: Dense(128, "relu") @ "cuda:1"
  layer: Dense(10, "softmax") @ "cpu"
  execution { device: "cuda" }
""",
    "upstream/tests__parser__test_networks.py__InvalidDeviceModel.neural": """\
network InvalidDeviceModel
  input: (28, 28, 1)
  layer: Conv2D(32, (3, 3), "relu") @ "quantum"
  layer: MaxPooling2D((2, 2))
  layer: Dense(10, "softmax")
""",
    "upstream/tests__parser__test_networks.py__LRScheduleModel.neural": """\
network LRScheduleModel
  input: (28, 28, 1)
  layer: Conv2D(32, (3, 3), "relu")
  layer: MaxPooling2D((2, 2))
  layer: Flatten()
  layer: Dense(128, "relu")
  layer: Dense(10, "softmax")
  optimizer: SGD(learning_rate=ExponentialDecay(HPO(range(0.05, 0.2, step=0.05)), 1000, HPO(range(0.9, 0.99, step=0.01))), momentum=0.9)
""",
    "upstream/tests__parser__test_networks.py__MultiInputModel.neural": """\
network MultiInputModel
  input image: (224, 224, 3)
  input metadata: (10,)
  layer: image: { Conv2D(32, (3, 3), "relu") MaxPooling2D((2, 2)) Flatten() Dense(64, "relu") }
  layer: metadata: { Dense(32, "relu") }
  layer: Concatenate()
  layer: Dense(128, "relu")
  layer: Dense(1, "sigmoid")
  loss: "binary_crossentropy"
""",
    "upstream/tests__parser__test_networks.py__RepetitionModel.neural": """\
network RepetitionModel
  input: (28, 28, 1)
  layer: Conv2D(32, (3, 3), "relu") * 2
  layer: MaxPooling2D((2, 2))
  layer: Dense(64, "relu") * 3
  layer: Dense(10, "softmax")
""",
    "upstream/tests__test_parser.py__IncompatibleLayers.neural": """\
network IncompatibleLayers
  input: (28, 28, 1)
  layer: Dense(128)
  layer: Conv2D(32, (3, 3))
  loss: "mse"
  optimizer: "sgd"
""",
}
