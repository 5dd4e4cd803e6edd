check document:readme#view @ user:ann
