# Clauses come after the query, in any order.
check document:readme#view@user:ann with {"ip": "10.0.0.1"} at 2024-05-01T00:00:00Z
what document#view@user:ann limit 100 after 42
what document#view@user:ann after "opaque cursor" limit 1
explain document:readme#view@user:ann at 2024-05-01T10:00:00+02:00 with {
  "ip": "10.0.0.1",
  "tags": ["a", "b;c"]
}
check   document:readme#view@user:ann;   check user:*   can view document:readme ; CHECK Document:a/b#view@user:x#... // trailing comment
