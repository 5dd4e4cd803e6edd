check user:ann view document:readme
