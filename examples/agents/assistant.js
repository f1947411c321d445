// AI agent: keeps a persona and a note log in private state (commands), and answers questions
// in query mode by calling llm.chat through the attested inference gateway.
export function init(args) {
  state.set("persona", (args && args.persona) || "You are a concise assistant.");
  state.set("notes", []);
}

export function handle(cmd) {
  if (cmd.op === "note") {
    const notes = state.get("notes");
    notes.push(String(cmd.text));
    state.set("notes", notes.slice(-20));
    emit({ type: "noted", count: notes.length });
    return notes.length;
  }
  if (cmd.op === "persona") { state.set("persona", String(cmd.text)); return true; }
  throw new Error("unknown op");
}

export function query(req) {
  const notes = state.get("notes") || [];
  const reply = llm.chat({
    model: req.model || "default",
    messages: [
      { role: "system", content: state.get("persona") + (notes.length ? "\nNotes:\n- " + notes.join("\n- ") : "") },
      { role: "user", content: String(req.question) },
    ],
    max_tokens: 256,
  });
  return { answer: reply.choices[0].message.content, model: reply.model, receipt_id: reply.receipt_id || null };
}
