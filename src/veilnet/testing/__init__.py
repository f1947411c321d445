"""Public test helpers: an in-memory Registry/Bus model and a multi-replica network harness.
Supported API for users testing agents and for Veilnet's own tests (like httpx's MockTransport)."""

from veilnet.testing.ledger import LedgerSim, Revert
from veilnet.testing.network import Network, cluster_id_of, query_core

__all__ = ["LedgerSim", "Network", "Revert", "cluster_id_of", "query_core"]
