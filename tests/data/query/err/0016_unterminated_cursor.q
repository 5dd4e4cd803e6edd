what document#view@user:ann after "unterminated
