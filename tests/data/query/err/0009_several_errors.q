# several queries, two of them wrong
check document:readme#view@user:ann
expand document:readme
who user can view document:readme; what document#view@user:ann limit 0
