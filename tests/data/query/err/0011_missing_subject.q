check document:readme#view
