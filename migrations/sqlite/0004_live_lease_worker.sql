-- The live leases of one worker: counted by every claim (`max_concurrent`) and by every worker
-- read (`running_steps`). Through `leases_worker` that count walked every lease the worker ever
-- held, so claims got slower as the server aged (issue #3).
CREATE INDEX leases_live_worker ON leases (worker_id)
    WHERE state IN ('active', 'cancelling');
