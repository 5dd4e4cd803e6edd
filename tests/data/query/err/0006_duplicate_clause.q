what document#view@user:ann limit 5 limit 6
