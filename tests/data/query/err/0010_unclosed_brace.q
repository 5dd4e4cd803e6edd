check document:readme#view@user:ann with {"ip": "10.0.0.1"
check document:readme#view@user:bob
