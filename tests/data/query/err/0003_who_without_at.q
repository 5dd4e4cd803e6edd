who document:readme#view user
