"""`opsready bench overhead|approval|memory|replay|burst`: what the ops layer costs against a
bare Temporal workflow with the same activity sequence (issue 13), measured, not timed
tests. Shared set-up in `rig`; the bare twin in `bare`; the bench agent in `agent`."""
