"""Keeping the SergeantWorker CRD in the cluster as new as the operator: the upgrade path Helm lacks.

Helm installs a chart's ``crds/`` once and never upgrades them, so an operator
upgraded with ``helm upgrade`` would meet the CRD of its first install: new fields
pruned, new rules unchecked. With ``--manage-crd`` (the chart's
``operator.manageCRD``, on by default) the operator applies the CRD it ships at
start when the cluster's is missing or older, then waits until it is established.

"Older" is read from the annotation :data:`REVISION_ANNOTATION`, a number raised
with every change of the CRD (a CRD without it is revision 0). A newer CRD in the
cluster (an operator rolled back) is left as it is: the API server serves both,
and a rollback must not drop fields that resources already use. The apply is
server-side, as ``sergeant-operator``, taking over the fields Helm or
``kubectl`` set. The operator needs ``get`` and ``patch`` on
``customresourcedefinitions`` named ``sergeantworkers.sergeant.io``, and ``create``
only to install a missing CRD.
"""

from __future__ import annotations

import importlib.resources
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from .kube import Kube

logger = logging.getLogger(__name__)

REVISION_ANNOTATION = 'sergeant.io/crd-revision'
BUNDLED_FILE = 'sergeantworkers.sergeant.io.yaml'  # a copy of operator/crd/'s, inside the package
ESTABLISH_TIMEOUT = 30.0


def bundled_crd() -> dict[str, Any]:
    """The SergeantWorker CRD this operator was built with."""
    text = (importlib.resources.files(__package__) / 'crd' / BUNDLED_FILE).read_text()
    crd: dict[str, Any] = yaml.safe_load(text)
    return crd


def revision(crd: Mapping[str, Any]) -> int:
    """The CRD's revision; 0 when it has none (every CRD before the annotation existed)."""
    value = ((crd.get('metadata') or {}).get('annotations') or {}).get(REVISION_ANNOTATION)
    return int(value) if isinstance(value, str) and value.isdigit() else 0


def _established(crd: Mapping[str, Any] | None, wanted: int) -> bool:
    if crd is None or revision(crd) != wanted:
        return False
    conditions = (crd.get('status') or {}).get('conditions') or []
    return any(c.get('type') == 'Established' and c.get('status') == 'True' for c in conditions)


def ensure_crd(
    kube: Kube,
    crd: Mapping[str, Any] | None = None,
    timeout: float = ESTABLISH_TIMEOUT,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Apply ``crd`` (default: the bundled one) when the cluster's is missing or older; wait until the
    applied one is established. Returns what was done: ``installed``, ``upgraded`` or ``current``.
    Raises KubeError when the API refuses, TimeoutError when the CRD is not established in time."""
    body = dict(crd if crd is not None else bundled_crd())
    name = body['metadata']['name']
    wanted = revision(body)
    current = kube.get_crd(name)
    if current is not None and revision(current) >= wanted:
        if revision(current) > wanted:
            logger.warning(
                'CRD %s is at revision %d, newer than ours (%d): left as it is',
                name, revision(current), wanted,
            )  # fmt: skip
        return 'current'
    logger.info(
        'CRD %s: applying revision %d (the cluster had %s)',
        name, wanted, 'none' if current is None else revision(current),
    )  # fmt: skip
    kube.apply_crd(body)
    deadline = time.monotonic() + timeout
    while not _established(kube.get_crd(name), wanted):
        if time.monotonic() > deadline:
            raise TimeoutError(f'CRD {name} revision {wanted} not established within {timeout:.0f} s')
        sleep(0.2)
    return 'installed' if current is None else 'upgraded'
