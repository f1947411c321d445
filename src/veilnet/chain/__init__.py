"""Veilnet's chain side: Vyper Registry and Bus, deploy/genesis, chains, follower and relay.
Pure data (events, headers, egress signing) is in ``model``/``egress``; I/O is everything else."""

from veilnet.chain.anvil import AnvilChain, find_anvil
from veilnet.chain.backends import EmbeddedChain, RPCChain
from veilnet.chain.contracts import ContractHandle, Receipt, TxSender
from veilnet.chain.deploy import Deployment, Network, deploy
from veilnet.chain.egress import check_egress, egress_domain, sign_egress, verify_egress
from veilnet.chain.errors import (
    ArtifactMismatch,
    ChainIntegrityError,
    ChainNotReady,
    ContractReverted,
    EventDecodeError,
    HeaderHashMismatch,
    LogProofFailed,
    ParentHashMismatch,
    RelayGaveUp,
    ReorgBeyondFinality,
    RPCError,
    RPCUnavailable,
)
from veilnet.chain.follower import Follower
from veilnet.chain.interfaces import ChainBackend
from veilnet.chain.launch import start_chain
from veilnet.chain.model import Block, BlockHeader, ChainAddresses, ChainEvent, decode_log
from veilnet.chain.relay import EgressRelay, RelayJournal, RelayOutcome
from veilnet.chain.rpc import JSONRPCClient

__all__ = [
    "AnvilChain",
    "ArtifactMismatch",
    "Block",
    "BlockHeader",
    "ChainAddresses",
    "ChainBackend",
    "ChainEvent",
    "ChainIntegrityError",
    "ChainNotReady",
    "ContractHandle",
    "ContractReverted",
    "Deployment",
    "EgressRelay",
    "EmbeddedChain",
    "EventDecodeError",
    "Follower",
    "HeaderHashMismatch",
    "JSONRPCClient",
    "LogProofFailed",
    "Network",
    "ParentHashMismatch",
    "RPCChain",
    "RPCError",
    "RPCUnavailable",
    "Receipt",
    "RelayGaveUp",
    "RelayJournal",
    "RelayOutcome",
    "ReorgBeyondFinality",
    "TxSender",
    "check_egress",
    "decode_log",
    "deploy",
    "egress_domain",
    "find_anvil",
    "sign_egress",
    "start_chain",
    "verify_egress",
]
