"""Size and lifetime limits of the wire formats, named once for the core and its clients.
A client that builds within these limits is never refused for size by a worker."""

from __future__ import annotations

from typing import Final

MAX_COMMAND_PLAINTEXT: Final = 64 * 1024
"""Largest opened command plaintext (``CommandPlaintext``) a worker accepts."""
MAX_QUERY_ENVELOPE: Final = 256 * 1024
"""Largest ``QueryRequest`` a worker reads."""
MAX_STATE_VALUE: Final = 256 * 1024
"""Largest single value an agent may store."""
MAX_CALL_DEPTH: Final = 4
"""Deepest nesting of agent-to-agent calls."""
QUERY_CERT_MAX_BLOCKS: Final = 7200
"""Longest lifetime a query certificate may claim, in blocks."""
QUERY_WINDOW_BLOCKS: Final = 64
"""Blocks a query stays answerable after the block it names (``QueryPlaintext.window``): a
worker remembers a request id only that long, so its replay cache is bounded by time."""
MAX_OUTCOMES_PER_QUERY: Final = 256
"""Most commands one ``outcome`` query may name (its body a list of seqs): a batch of commands
is verified with a query per this many."""
MAX_OUTCOMES_ANSWER_BYTES: Final = 1024 * 1024
"""Past this much JSON, the outcomes of one ``outcome`` query's list are answered ``{"status":
"later"}`` (the first is always answered): agents' results may be large, and the sealed answer
must stay within the envelope limit."""
QUERY_WINDOW_AHEAD: Final = 8
"""How far a query's ``window`` may lie ahead of the worker's head (the client's chain view may
be a few blocks newer); a worker further behind refuses it as not ready."""
MAX_COLLATERAL_BYTES: Final = 256 * 1024
"""Largest decompressed collateral a worker publishes for its registration."""
MAX_REGISTRATION_GAS: Final = 10_000_000
MAX_REGISTRATION_DEPOSIT: Final = 10**19
"""Most wei a core sends with its registration (10 ether): a bound on what a host can make
the identity's transaction carry, far above any deposit governance would set (and within the
64 bits the enclave interface carries)."""
"""Most gas the identity's ``register_worker`` transaction may carry (its own ETH pays it)."""
REATTEST_MARGIN_S: Final = 7 * 24 * 3600
"""A worker re-attests once its endorsement expires within this much chain time (collateral is
usually valid for 30 days, so about a week before it lapses)."""

MAX_EGRESS_PAYLOAD: Final = 8192
"""The largest egress payload a core emits (bytes). The Bus refuses a payload limit below it
(``Bus.MIN_MAX_PAYLOAD``), so no message a core signs can be too big to post and block its
origin: messages that grow (late-join key shares) are split, and any other payload above it is
replaced by a ``veil/egress/skipped`` notice that takes its sequence number."""
