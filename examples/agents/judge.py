# AI judge: rules on an escrow dispute with the model behind the attested inference gateway.
# The claim, the prompt and the model's answer stay sealed between the enclave and the
# gateway; the Escrow contract pays whoever the signed ruling names ("buyer" or "seller").
import json

RULES = (
    "You are an impartial escrow judge. Read the dispute and answer with one word: "
    "BUYER if the buyer should get the money back, SELLER if the seller should be paid."
)


def job(request):
    payload = request["payload"]
    claim = payload if isinstance(payload, str) else json.dumps(payload)
    reply = llm.chat(
        {
            "messages": [
                {"role": "system", "content": RULES},
                {"role": "user", "content": claim},
            ],
            "max_tokens": 4,
            "temperature": 0,
        }
    )
    # the word the model said last decides; no word at all leaves the money with the buyer
    text = reply["text"].upper()
    return "seller" if text.rfind("SELLER") > text.rfind("BUYER") else "buyer"
