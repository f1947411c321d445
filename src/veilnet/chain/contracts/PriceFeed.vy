# pragma version 0.4.3
# pragma evm-version cancun
"""
@title Veilnet price feed
@notice A `VeilConsumer` whose agent reports a price on a standing job: each tick's result,
        signed by the agent's contract key, must read exactly `{"ok":true,"result":N}` with N
        a whole number (the price in `DECIMALS` fixed point, as the oracle example returns it).
        The newest tick wins; an older or malformed one reverts. Read `latest()`.
"""

import VeilConsumer as consumer

initializes: consumer

exports: (
    consumer.request,
    consumer.fulfill,
    consumer.fulfill_batch,
    consumer.expire,
    consumer.result_digest,
    consumer.state,
    consumer.paid,
    consumer.last_tick,
    consumer.BUS,
    consumer.AGENT,
    consumer.TTL,
)

DECIMALS: public(constant(uint256)) = 6
# `{"ok":true,"result":` then up to 32 digits, then `}`.
PREFIX: constant(Bytes[20]) = b'{"ok":true,"result":'
MAX_DIGITS: constant(uint256) = 32

event PriceUpdated:
    height: indexed(uint256)
    price: uint256

price: public(uint256)
updated_at: public(uint256)


@deploy
def __init__(bus: address, agent: bytes32, ttl: uint256):
    consumer.__init__(bus, agent, ttl)


@external
def fulfill_tick(schedule_id: uint256, height: uint256, result: Bytes[32768], signature: Bytes[65]):
    """
    @notice A tick's signed result (as `VeilConsumer.fulfill_tick`), taken as the new price.
    """
    consumer._take_tick(schedule_id, height, result, signature)
    self.price = self._parse(result)
    self.updated_at = height
    log PriceUpdated(height=height, price=self.price)


@view
@external
def latest() -> (uint256, uint256):
    """
    @notice The newest price (fixed point, `DECIMALS`) and the block height of its tick.
    """
    return self.price, self.updated_at


@pure
@internal
def _parse(result: Bytes[32768]) -> uint256:
    size: uint256 = len(result)
    assert size > 21 and size <= 21 + MAX_DIGITS, "not a price"
    assert slice(result, 0, 20) == PREFIX, "not a price"
    assert convert(slice(result, size - 1, 1), bytes1) == 0x7d, "not a price"
    value: uint256 = 0
    for i: uint256 in range(MAX_DIGITS):
        if 20 + i == size - 1:
            break
        digit: uint256 = convert(convert(slice(result, 20 + i, 1), bytes1), uint256)
        assert digit >= 48 and digit <= 57, "not a price"
        value = value * 10 + digit - 48
    return value
