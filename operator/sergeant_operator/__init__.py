"""Sergeant's Kubernetes operator: deploys SergeantWorker pools and scales them from queue length.

Layers, lowest first: :mod:`.policy` (the scaling decision, pure) and :mod:`.resource`
(the resource's spec, pure); :mod:`.deployment`, :mod:`.status` (desired objects,
pure), :mod:`.security` (what a pod template may not ask for, pure), :mod:`.hpa`
(deferring to a HorizontalPodAutoscaler, pure); :mod:`.kube` (the Kubernetes API),
:mod:`.crd` (upgrading the CRD at start), :mod:`.queue` (reading queues through
Sergeant's connectors); :mod:`.reconciler` (one SergeantWorker per thread),
:mod:`.leader` (Lease-based election), :mod:`.metrics` (/metrics and /healthz);
:mod:`.manager` ties them together and :mod:`.cli` is the ``sergeant-operator`` command.
"""

from __future__ import annotations

from .policy import Observation, ScalerState, ScalingSpec, decide
from .resource import API_VERSION, GROUP, KIND, PLURAL, VERSION

__all__ = [
    'API_VERSION',
    'GROUP',
    'KIND',
    'PLURAL',
    'VERSION',
    'Observation',
    'ScalerState',
    'ScalingSpec',
    'decide',
]
