document:readme#view@user:ann
