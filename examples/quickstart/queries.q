# The tour `purview demo` runs. Each `# ` comment describes the query below it. Run them yourself:
#   purview query --schema schema.pv --data data.rels --file queries.q

# Sam supervises the traders group, and m1 is tagged with it
check message:m1#view@user:sam
# m2 is tagged only with sales, which Sam does not supervise
check message:m2#view@user:sam
# Carol supervises sales as a member of the compliance team (the alias form of a check)
check user:carol can view message:m2
# Rita reviews m1 in business hours only: without the hour, the answer is conditional
check message:m1#view@user:rita
# ... and with the hour in the request context, it is decided
check message:m1#view@user:rita with {"hour": 9}
# Who can see m3? It is tagged with two groups, so the supervisors of either, and the admin
who message:m3#view@user
# Which messages can Sam see?
what message#view@user:sam
# Sam can view m4 but not review it: he took part in it. Why?
explain message:m4#review@user:sam
# Why can Dan see m2?
explain message:m2#view@user:dan
