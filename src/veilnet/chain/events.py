"""Event reference of Veilnet's contracts (every event, checked: ``docs/dapps.md``); classes in
``veilnet.chain.model``. What an enclave core replays is one of these, decoded from proven logs.

Registry (governance = snekmate ``ownable_2step`` owner; the deployer at genesis)
    OwnershipTransferred(previous_owner, new_owner), OwnershipTransferStarted(...)
    BusSet(bus)                                  genesis, once
    MeasurementSet(measurement, allowed)         governance allowlist
    GatekeeperAdded(gatekeeper) / GatekeeperRemoved(gatekeeper)
                                                 governance; genesis names the first one. The
                                                 gatekeeper must already be a registered worker
    WorkerRegistered(worker, operator, hpke_key, tee_kind, measurement, quote_hash,
                     collateral_hash, quote)     tx sent by the worker identity; quote in the log
    WorkerEndorsed(worker, confidence, quote_hash, valid_until)
                                                 egress TOPIC_ENDORSE from the master key; the
                                                 endorsement lapses at valid_until (block time)
    WorkerReattested(worker, quote_hash, collateral_hash, quote)
                                                 tx sent by the worker identity before its
                                                 endorsement lapses: a fresh quote, judged again
    HeartbeatRecorded(worker, height, boot_id, sealed_height) / WorkerFlagged(worker, reason)
                                                 egress TOPIC_HEARTBEAT; two live copies flagged
    ReplicaDiverged(cluster_id, worker, height, commitment, majority)
                                                 egress TOPIC_STATE_COMMITMENT: a member against
                                                 its cluster's majority (de-endorsed), or a split
                                                 with no majority yet (majority empty)
    MasterKeySet(gatekeeper, key_address, public_key)
                                                 egress TOPIC_MASTER_KEY from a gatekeeper's
                                                 worker identity, once (genesis of the master key)
    RotationLocked(rotation)                     governance takes the lock
    RotationProposed(rotation, proposer, key_address, public_key)
                                                 egress TOPIC_ROTATION_PROPOSE from a gatekeeper
                                                 identity; the first to land wins (confirmation 1).
                                                 Encrypted key shares travel as other egress topics
    RotationConfirmed(rotation, gatekeeper, confirmations)
                                                 egress TOPIC_ROTATION_CONFIRM from each gatekeeper
                                                 identity (confirmation 2)
    MasterKeyRotated(rotation, key_address, public_key)
                                                 emitted with the last confirmation: lock released
    RotationAborted(rotation)                    governance released the lock without a new key
    ClusterCreated(cluster_id, owner, suite)     governance; suite 1 X25519, 2 ML-KEM-768+X25519
    ClusterWorkerAdded(cluster_id, worker) / ClusterWorkerRemoved(...)
                                                 cluster owner; only endorsed workers
    ClusterKeySet(cluster_id, epoch, key_address, public_key)
                                                 egress TOPIC_CLUSTER_KEY from the master key;
                                                 epochs strictly increase. Per-worker encrypted
                                                 cluster keys travel as other egress topics
    ContractDeployed(contract_id, cluster_id, owner, controller, code_hash, code, init_args)
                                                 anyone; id = keccak256(abi_encode(owner, salt))
    ContractKeySet(contract_id, epoch, key_address, public_key)
                                                 egress TOPIC_CONTRACT_KEY from the cluster key
                                                 of the current epoch
    ContractPaused(contract_id, paused, by), ContractUpgraded(contract_id, code_hash, code),
    ContractOwnerChanged(contract_id, owner), ContractControllerChanged(contract_id, controller)
    ContractInitFailed(contract_id, code)        egress TOPIC_INIT_FAILED from the cluster key:
                                                 the agent's init failed; it is paused too
                                                 owner or controller (an address or EVM contract)

Bus
    Command(contract_id, seq, sender, payload)   push_command; seq per contract from 0
    Egress(origin, seq, topic, payload)          post; seq per origin from 0; first copy wins.
                                                 State commitments, key shares and any
                                                 application output are Egress topics
    EgressRejected(origin, seq, topic)           the Egress above was accepted (seq consumed)
                                                 but the Registry refused its effect
    ParamsChanged(max_payload, command_fee, fee_hook)

Origins (``Registry.origin_kind``): 1 worker identity, 2 master key, 3 cluster key, 4 contract
key. Old cluster/contract/master key addresses stay valid origins after rotation so in-flight
messages still land.
"""

from veilnet.chain.model import (
    EVENT_TYPES,
    Block,
    BlockHeader,
    BusSet,
    ChainAddresses,
    ChainEvent,
    ClusterCreated,
    ClusterKeySet,
    ClusterWorkerAdded,
    ClusterWorkerRemoved,
    Command,
    ContractControllerChanged,
    ContractDeployed,
    ContractInitFailed,
    ContractKeySet,
    ContractOwnerChanged,
    ContractPaused,
    ContractUpgraded,
    Egress,
    EgressRejected,
    GatekeeperAdded,
    GatekeeperRemoved,
    MasterKeyRotated,
    MasterKeySet,
    MeasurementSet,
    OwnershipTransferred,
    OwnershipTransferStarted,
    ParamsChanged,
    RawLog,
    RotationAborted,
    RotationConfirmed,
    RotationLocked,
    RotationProposed,
    WorkerEndorsed,
    WorkerRegistered,
    decode_log,
    event_topic,
)

__all__ = [
    "EVENT_TYPES",
    "Block",
    "BlockHeader",
    "BusSet",
    "ChainAddresses",
    "ChainEvent",
    "ClusterCreated",
    "ClusterKeySet",
    "ClusterWorkerAdded",
    "ClusterWorkerRemoved",
    "Command",
    "ContractControllerChanged",
    "ContractDeployed",
    "ContractInitFailed",
    "ContractKeySet",
    "ContractOwnerChanged",
    "ContractPaused",
    "ContractUpgraded",
    "Egress",
    "EgressRejected",
    "GatekeeperAdded",
    "GatekeeperRemoved",
    "MasterKeyRotated",
    "MasterKeySet",
    "MeasurementSet",
    "OwnershipTransferStarted",
    "OwnershipTransferred",
    "ParamsChanged",
    "RawLog",
    "RotationAborted",
    "RotationConfirmed",
    "RotationLocked",
    "RotationProposed",
    "WorkerEndorsed",
    "WorkerRegistered",
    "decode_log",
    "event_topic",
]
