"""Summarise a pipeline run.

Run with python3 (the action says `language: python`). Reads the step's validated input from the
JSON file named by $STROEM_INPUT and writes its output to $STROEM_OUTPUT.
"""

import json
import os

with open(os.environ["STROEM_INPUT"]) as f:
    step_input = json.load(f)

deployed = step_input["deployed"]
lint = json.loads(step_input["lint"])
print(f"release {step_input['version']}: {len(deployed)} services deployed")
for service in deployed:
    print(f"  {service['service']:<8} {service['url']}")
print(f"lint warnings: {lint['warnings']}; notes: {step_input.get('notes') or 'none'}")

with open(os.environ["STROEM_OUTPUT"], "w") as f:
    json.dump(
        {
            "version": step_input["version"],
            "services": [service["service"] for service in deployed],
            "urls": [service["url"] for service in deployed],
        },
        f,
    )
