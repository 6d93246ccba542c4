"""Living with a HorizontalPodAutoscaler: which one, if any, scales a SergeantWorker's pool (pure).

The CRD's scale subresource lets an HPA target a SergeantWorker (it then writes
``spec.replicas``); an HPA may also target the worker's Deployment directly. Either
way the operator steps back instead of fighting it: it stops deciding the size,
keeps applying everything else, and reports the ExternallyScaled condition.

* HPA → SergeantWorker: the Deployment runs ``spec.replicas``, the HPA's decision.
* HPA → Deployment: the operator's apply leaves ``spec.replicas`` out, after
  handing the field to :data:`HANDOVER_MANAGER` so that leaving it out does not
  reset it to the default of 1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from .resource import FIELD_MANAGER, GROUP, KIND

HANDOVER_MANAGER = f'{FIELD_MANAGER}-handover'


@dataclasses.dataclass(frozen=True)
class Autoscaler:
    name: str  # the HorizontalPodAutoscaler's
    target_kind: str  # SergeantWorker or Deployment

    @property
    def scales_deployment(self) -> bool:
        return self.target_kind == 'Deployment'


def _group(api_version: object) -> str | None:
    """The API group of an apiVersion ('apps/v1' → 'apps', 'v1' → ''); None when it is not given."""
    if not isinstance(api_version, str) or not api_version:
        return None
    return api_version.split('/')[0] if '/' in api_version else ''


def autoscaler_of(autoscalers: Iterable[Mapping[str, Any]], name: str) -> Autoscaler | None:
    """The first HPA (by name) whose scaleTargetRef is the SergeantWorker ``name`` or its Deployment."""
    ordered = sorted(autoscalers, key=lambda hpa: str((hpa.get('metadata') or {}).get('name') or ''))
    for hpa in ordered:
        target = (hpa.get('spec') or {}).get('scaleTargetRef') or {}
        if target.get('name') != name:
            continue
        group = _group(target.get('apiVersion'))
        for kind, wanted_group in ((KIND, GROUP), ('Deployment', 'apps')):
            if target.get('kind') == kind and group in (None, wanted_group):
                return Autoscaler(str((hpa.get('metadata') or {}).get('name') or ''), kind)
    return None


def owns_replicas(deployment: Mapping[str, Any], manager: str = FIELD_MANAGER) -> bool:
    """True when ``manager`` applied the Deployment's ``spec.replicas`` (per its managedFields)."""
    for entry in (deployment.get('metadata') or {}).get('managedFields') or []:
        if entry.get('manager') != manager or entry.get('operation') != 'Apply':
            continue
        if 'f:replicas' in ((entry.get('fieldsV1') or {}).get('f:spec') or {}):
            return True
    return False


def handover_body(deployment: Mapping[str, Any]) -> dict[str, Any]:
    """An apply body (for :data:`HANDOVER_MANAGER`) holding only the Deployment's current size."""
    metadata = deployment.get('metadata') or {}
    return {
        'apiVersion': 'apps/v1',
        'kind': 'Deployment',
        'metadata': {'name': metadata.get('name'), 'namespace': metadata.get('namespace')},
        'spec': {'replicas': int((deployment.get('spec') or {}).get('replicas') or 0)},
    }
