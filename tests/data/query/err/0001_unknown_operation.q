chek document:readme#view@user:ann
