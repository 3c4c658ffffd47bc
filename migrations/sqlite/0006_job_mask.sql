-- What must stay masked in a job's views, kept with the job (WF §16.3, issue #16): the JSON of
-- `engine::MaskRecord` — the job's secret input fields and mask values, sealed with every mask
-- value its data contains when it finishes — so its views stay masked when its workspace
-- revision is gone. Mirrors the other backend's 0006_job_mask.sql.
--
-- Rows stored before this migration keep NULL, which means "what must be masked is not
-- known": their views mask with the job's revision while it is loaded and show no value,
-- message or error of theirs otherwise (lists included), so they fail closed.
ALTER TABLE jobs ADD COLUMN mask TEXT;
