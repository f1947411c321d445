"""Public test helpers: an in-memory Registry/Bus model, a multi-replica network harness, a
malicious host for the enclave (``veilnet.testing.adversary``) and prerequisite checks."""

from veilnet.testing._ci import is_ci, require_tool
from veilnet.testing.ledger import LedgerSim, Revert
from veilnet.testing.network import Network, cluster_id_of, query_core, sealed_query

__all__ = [
    "LedgerSim",
    "Network",
    "Revert",
    "cluster_id_of",
    "is_ci",
    "query_core",
    "require_tool",
    "sealed_query",
]
