check document:readme#view@user:ann at yesterday
