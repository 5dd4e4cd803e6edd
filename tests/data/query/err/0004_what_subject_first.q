what user:ann#view document
