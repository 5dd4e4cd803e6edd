# subset: is every object of a set one the subject has a permission on? (INS-5)
subset role:auditor#grants in user:ann#exercise
subset right#granted@role:auditor#member in user:ann#exercise
// The alias reads as a sentence.
SUBSET user:ann can exercise EVERY role:auditor#grants
subset user:ann can exercise every right#granted@role:auditor#member
subset role:auditor#grants in user:ann#exercise with {"hour": 9} at 2024-05-01T00:00:00Z
// A userset may hold the permission: the last `#` starts the permission.
subset role:auditor#grants in group:g#member#exercise
subset role:auditor#grants in user:*#exercise
subset role:auditor#grants in user:ann#...#exercise; subset right#granted@role:auditor#... in user:ann#exercise
