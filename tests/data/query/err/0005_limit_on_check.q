check document:readme#view@user:ann limit 10
