expand document#view
