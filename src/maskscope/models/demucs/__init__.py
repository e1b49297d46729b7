"""Slimmable DEMUCS with an optional per-segment router (adaptive slimming, arXiv 2507.04879).

A waveform U-Net: `depth` encoder layers (strided Conv1d -> ReLU -> 1x1 conv to 2C -> GLU), a GRU bottleneck,
and a mirrored decoder (1x1 conv to 2C -> GLU -> ConvTranspose1d -> ReLU, no ReLU on the audio output) that
adds the encoder output of the same depth before each layer. Every layer can run at a utilization factor
UF by slicing its weights: it uses only the first `slim_channels(C, UF)` channels of each hidden layer, so
one set of weights holds every width (the audio input and output channel are never slimmed).

`forward(noisy, uf=0.25)` runs the whole network at one UF (static use, and slimmable training where the
caller samples UF per batch). A `dynamic` model called with `uf=None` lets a small router pick one width
per input segment with Gumbel-softmax (straight-through hard one-hot in training, argmax in eval). The
routed forward computes at the widest width and multiplies every hidden activation by a 0/1 channel mask
that follows each segment's choice at each layer's time resolution. That is the same function as a
streaming slimmed network in which a channel that is off holds zeros (in conv buffers and in the GRU
state): a run where every segment picks the same UF equals the static model at that UF exactly.

Where the paper is silent (all parameters of `SlimDemucsConfig`, written down in its docstring):
- The bottleneck is a unidirectional GRU (`gru_layers`, default 2) when causal; non-causal uses a
  bidirectional GRU and a Linear 2C -> C, as DEMUCS does with its BLSTM.
- A grouped GRU splits the C hidden channels into G interleaved groups (channel j belongs to group j mod G),
  each with its own GRU on its share of the input. Interleaving keeps a slimmed grouped GRU grouped: the
  first c channels spread over all groups, so its cost falls like c**2 / G instead of c**2.
- Resampling (x2, x4) is linear interpolation up and an r-sample mean down: cheap and adds under one
  sample of look-ahead; a sinc filter would be sharper but adds a long symmetric look-ahead.
- Causality: convolutions without padding look ahead inside their kernel, so the model has a fixed,
  exactly computed look-ahead (`lookahead_samples`) and no
  dependence on later input. Input normalisation divides by the std of the whole input: a single scalar,
  the one utterance-level step; a streaming system would use a running estimate (`normalize=False` to
  exclude it).
- The router sees learned log-energies: a strided Conv1d filterbank (kernel = stride = `router_frame`),
  squared and mean-pooled over each segment, log, beside each one's rise above its minimum over the
  earlier segments (a causal noise-floor estimate: speech onsets are rises above the noise), then an MLP.
  By default it decides segment k from segments before k (the first sees silence), so routing adds no
  latency; `router_lookahead=True` lets it see segment k itself (one segment of extra latency, as in
  routing whole utterances).
- The router's budget is in MACs, not in UF: the utilization loss pulls the expected share of full-width
  MACs (`width_costs`) to the share of a static model at the target UF. MACs grow about as UF**2, so
  with an average-UF target a router can meet the average with the narrowest and the full width and
  spend far more MACs than the static model it is compared with. A target below the narrowest width is
  out of reach: the router settles on the narrowest everywhere.
- `rest_usage_loss` adds the expected cost on segments whose clean crop is silent (`speech_segments`:
  no 256-sample block within the threshold of the crop's loudest). Without it the router meets the
  budget with one width everywhere and saves nothing; with it, it also spends a little below budget,
  where the two losses balance.

The package: `config` (the architecture), `layers` (slimmable layers), `router` (the router and its
losses), `network` (the model), `costs` (MACs).
"""

from maskscope.models.demucs.config import (
    SlimDemucsConfig,
    SlimOutput,
    lookahead_samples,
    network_length,
    slim_channels,
)
from maskscope.models.demucs.costs import (
    cost_share,
    macs_per_sample,
    routed_macs_per_sample,
    router_macs_per_sample,
    width_channel_masks,
    width_costs,
)
from maskscope.models.demucs.layers import (
    DecoderLayer,
    EncoderLayer,
    SlimConv1d,
    SlimConvTranspose1d,
    SlimGRU,
    SlimGRUStack,
    SlimLinear,
)
from maskscope.models.demucs.network import SlimDemucs, input_scale
from maskscope.models.demucs.router import (
    SegmentRouter,
    expected_uf,
    rest_usage_loss,
    speech_segments,
    utilization_loss,
)

__all__ = [
    "DecoderLayer",
    "EncoderLayer",
    "SegmentRouter",
    "SlimConv1d",
    "SlimConvTranspose1d",
    "SlimDemucs",
    "SlimDemucsConfig",
    "SlimGRU",
    "SlimGRUStack",
    "SlimLinear",
    "SlimOutput",
    "cost_share",
    "expected_uf",
    "input_scale",
    "lookahead_samples",
    "macs_per_sample",
    "network_length",
    "rest_usage_loss",
    "routed_macs_per_sample",
    "router_macs_per_sample",
    "slim_channels",
    "speech_segments",
    "utilization_loss",
    "width_channel_masks",
    "width_costs",
]
