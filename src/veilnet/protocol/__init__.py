"""Every format that crosses a boundary of the enclave core: envelopes, sessions, chain events,
egress, registration, outcomes and limits. Pure and I/O-free: core, SDK, chain and worker use it."""

from veilnet.protocol import envelopes, errors, events, limits, topics
from veilnet.protocol.egress import EGRESS_TYPE, EgressMessage
from veilnet.protocol.outcomes import OutcomeError, OutcomeRecord
from veilnet.protocol.registration import RegistrationRequest, TEEKind, registration_report_data

__all__ = [
    "EGRESS_TYPE",
    "EgressMessage",
    "OutcomeError",
    "OutcomeRecord",
    "RegistrationRequest",
    "TEEKind",
    "envelopes",
    "errors",
    "events",
    "limits",
    "registration_report_data",
    "topics",
]
