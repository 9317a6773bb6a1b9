"""Synthetic driving data with planted attention heads: the demo and the calibration engine.

:func:`generate` simulates episodes of multi-lane highway traffic around an ego vehicle,
computes the driving features with the definitions of the driving logs (:mod:`hsi_stats.kinematics`) and draws the
attention of heads whose relation to the features is known. :func:`write_driving_logs` and
:func:`write_extraction` write a run in the driving formats (two-directory logs, unified extractions), so that the
readers can be tested end to end.

Traffic. Each episode has 3 or 4 lanes (3.7 m wide; lane 0 is the rightmost, ``dy > 0`` is left) and an episode-level
traffic density ``rho ~ U(0, 1)``. Dense episodes have more vehicles present, a shorter window (the V nearest vehicles
of dense traffic are all near: half-width 80 m at ``rho = 0``, 40 m at ``rho = 1``) and slower traffic (desired speeds
6 m/s lower): the density confound, under which the original pooled method's iid p-values reject far too often (see
the calibration page of the docs). Speeds follow the intelligent driver model with a smooth (Ornstein-Uhlenbeck)
acceleration noise, positions integrate the speeds, vehicles change lane now and then (more often when blocked) and
move sideways over a few seconds, and a vehicle that leaves the window is replaced, after a short delay, by a new one
entering at the window's edge. At every step 2 to ``n_slots`` vehicles are present; slots are ordered by distance
(slot 0 is the nearest present vehicle; absent slots are padding at the end, with mask False and features 0).

Attention. Head h gives each present vehicle the logit
``beta_h * x_f / scale_f + gamma_h * [slot == k_eh] + noise_h * eps + persistent_h * u``,
and its attention is the softmax over the present vehicles only (0 on padding). ``scale_f`` is a
fixed reference scale of the feature (:data:`FEATURE_SCALES`; 1 for the 0/1 features), ``k_eh`` a
slot drawn per episode uniformly over *all* ``n_slots`` slots, ``eps`` i.i.d. standard normal per
vehicle and step, and ``u`` a smooth standard-normal AR(1) per vehicle (time constant 3 s, redrawn
for each new vehicle). Because ``k`` is uniform over all slots, the preference is exchangeable among
the present vehicles: a head without ``beta`` has a true within-scenario correlation of exactly zero
with every feature, yet strong episode-level clustering. Such heads are true nulls that fool methods
treating scenarios as independent.

Ground truth of the default heads (:func:`default_heads`):

====  ===============  ====  =====  =============  ====================  =========
head  feature          beta  gamma  expected sign  expected label        kind
====  ===============  ====  =====  =============  ====================  =========
h0    ttc              -3.0  0      negative       Safety Head           planted
h1    distance_to_ego  -2.0  0      negative       Proximity Head        planted
h2    is_left          +4.0  0      positive       Left Lane Head        planted
h3    is_ahead         +4.0  0      positive       Traffic Flow Head     planted
h4    (none)           0     1.5    (none)         General Context Head  no effect
h5    (none)           0     1.5    (none)         General Context Head  no effect
h6    (none)           0     1.5    (none)         General Context Head  no effect
h7    (none)           0     1.5    (none)         General Context Head  no effect
====  ===============  ====  =====  =============  ====================  =========

Heads that specialise over training. A head with an emergence window ``(start, end)``
(:attr:`HeadSpec.emergence`) has its planted ``beta`` scaled, at each checkpoint ``c``, by
``s(c) = clip((c - start) / (end - start), 0, 1)``,
so the head tracks nothing at checkpoints up to ``start``, its effect grows linearly in between and
is complete from ``end`` on. Everything else (traffic, noise, slot preferences) is the same at every
checkpoint. :func:`specialising_heads` gives the default heads with such a window on the planted
ones (``generate(specialise=(start, end))`` is the shortcut); without a window a head is fully
trained at every checkpoint, exactly as before the option existed.

Every head has i.i.d. logit noise 1.0 and persistent noise 0.3. ``is_ahead`` and ``is_behind`` are
complementary for every present vehicle, so the within-scenario rho of h3 with ``is_behind`` is
exactly minus its rho with ``is_ahead``; ttc, distance and closing speed are collinear by
construction, and left lanes are faster (h2 also correlates with ``agent_speeds``).

The package has four parts: :mod:`~hsi_stats.synthetic.heads` (what each head attends to and its
ground truth), :mod:`~hsi_stats.synthetic.traffic` (the episodes, the simulator and the driving
features), :mod:`~hsi_stats.synthetic.attention` (the attention model) and
:mod:`~hsi_stats.synthetic.run` (:func:`generate` and :class:`SyntheticRun`); the writers
(:mod:`~hsi_stats.synthetic.writers`) hand a run to the file writers of :mod:`hsi_stats.io`.
It belongs to the data layer: it imports numpy (pandas only for a table view), never computes a
statistic and never lays out a file format itself.
"""

from .heads import FEATURE_SCALES, HeadSpec, HeadTruth, default_heads, null_heads, specialising_heads
from .run import DEMO_CHECKPOINTS, DEMO_EMERGENCE, SyntheticRun, generate
from .traffic import FEATURE_NAMES, LANE_WIDTH
from .writers import write_driving_logs, write_extraction

__all__ = [
    "DEMO_CHECKPOINTS",
    "DEMO_EMERGENCE",
    "FEATURE_NAMES",
    "FEATURE_SCALES",
    "LANE_WIDTH",
    "HeadSpec",
    "HeadTruth",
    "SyntheticRun",
    "default_heads",
    "generate",
    "null_heads",
    "specialising_heads",
    "write_driving_logs",
    "write_extraction",
]
