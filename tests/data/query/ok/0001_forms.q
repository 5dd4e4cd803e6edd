// Every operation, in the primary form and in the alias form.
check document:readme#view@user:ann
check user:ann can view document:readme
explain document:readme#view@user:ann
explain user:ann can view document:readme
who document:readme#view@user
who document:readme#view@group#member
who user can view document:readme
what document#view@user:ann
what user:ann can view document
expand document:readme#view
