# AI agent: keeps a persona and a note log in private state (commands), and answers questions
# in query mode by calling llm.chat through the attested inference gateway.


def init(args):
    state.set("persona", (args or {}).get("persona", "You are a concise assistant."))
    state.set("notes", [])


def handle(cmd):
    op = cmd.get("op")
    if op == "note":
        notes = state.get("notes")
        notes.append(str(cmd["text"]))
        state.set("notes", notes[-20:])
        emit({"type": "noted", "count": len(notes)})
        return len(notes)
    if op == "persona":
        state.set("persona", str(cmd["text"]))
        return True
    raise ValueError("unknown op")


def query(req):
    notes = state.get("notes") or []
    system = state.get("persona")
    if notes:
        system = system + "\nNotes:\n- " + "\n- ".join(notes)
    reply = llm.chat(
        {
            "model": req.get("model", "default"),
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": str(req["question"])},
            ],
            "max_tokens": 256,
        }
    )
    return {
        "answer": reply["choices"][0]["message"]["content"],
        "model": reply["model"],
        "receipt_id": reply.get("receipt_id"),
    }
