check document:readme#view@user:*#member
