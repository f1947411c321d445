# pragma version 0.4.3
# pragma evm-version cancun
"""
@title Veilnet escrow with an AI judge
@notice A buyer pays into escrow for a seller; if they disagree, either asks the judge agent
        (through the Bus, like any `VeilConsumer` request) with the dispute as payload. The
        agent's signed result must read exactly `{"ok":true,"result":"buyer"}` or
        `{"ok":true,"result":"seller"}`: the escrow then pays that party. Any other result,
        or none by the deadline, leaves the funds where they are; the buyer may release
        them to the seller at any time.
"""

import VeilConsumer as consumer

initializes: consumer

exports: (
    consumer.result_digest,
    consumer.state,
    consumer.BUS,
    consumer.AGENT,
    consumer.TTL,
)

BUYER_WINS: constant(Bytes[32]) = b'{"ok":true,"result":"buyer"}'
SELLER_WINS: constant(Bytes[32]) = b'{"ok":true,"result":"seller"}'

event Disputed:
    request_id: indexed(bytes32)
    by: indexed(address)

event Settled:
    winner: indexed(address)
    amount: uint256
    request_id: bytes32

buyer: public(address)
seller: public(address)
dispute: public(bytes32)
settled: public(bool)


@deploy
@payable
def __init__(bus: address, agent: bytes32, ttl: uint256, seller: address):
    consumer.__init__(bus, agent, ttl)
    assert seller != empty(address) and seller != msg.sender, "bad parties"
    self.buyer = msg.sender
    self.seller = seller


@external
def release():
    """
    @notice The buyer is satisfied: the seller gets the funds.
    """
    assert msg.sender == self.buyer, "not buyer"
    self._settle(self.seller, empty(bytes32))


@external
def ask_judge(claim: Bytes[4000]) -> bytes32:
    """
    @notice Either party asks the judge agent to rule on `claim` (one dispute at a time).
    """
    assert msg.sender == self.buyer or msg.sender == self.seller, "not a party"
    assert not self.settled, "settled"
    request_id: bytes32 = extcall consumer.IBus(consumer.BUS).request(consumer.AGENT, claim, consumer.TTL)
    consumer.state[request_id] = convert(block.number + consumer.TTL, bytes32)
    self.dispute = request_id
    log Disputed(request_id=request_id, by=msg.sender)
    return request_id


@external
def fulfill(request_id: bytes32, result: Bytes[32768], signature: Bytes[65]):
    """
    @notice The judge's signed ruling on the open dispute; it pays the party it names.
    """
    assert request_id == self.dispute, "not the open dispute"
    consumer._accept(request_id, keccak256(result), signature)
    log consumer.Fulfilled(request_id=request_id, result=result)
    if result == BUYER_WINS:
        self._settle(self.buyer, request_id)
    elif result == SELLER_WINS:
        self._settle(self.seller, request_id)


@internal
def _settle(winner: address, request_id: bytes32):
    assert not self.settled, "settled"
    self.settled = True
    amount: uint256 = self.balance
    log Settled(winner=winner, amount=amount, request_id=request_id)
    send(winner, amount)
