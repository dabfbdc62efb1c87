wrk.method = "POST"
wrk.body = "{\"a\": [[1.0, 2.0], [3.0, 4.0]], \"b\": [[5.0, 6.0], [7.0, 8.0]]}"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJiZW5jaG1hcmsiLCJzY29wZSI6Im1hdHJpeDpjb21wdXRlIiwiZXhwIjoxNzk2NzAxNTIxfQ.95HxLRGLw0zgUsY-eFyGIOGReC16mTZb_5kETO6kAa4"
