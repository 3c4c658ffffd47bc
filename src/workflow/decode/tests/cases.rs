//! One snapshot per group of diagnostics: small broken workspaces and what the decoder says
//! about them. Every message the decoder (and the YAML tree under it) emits appears here.

use super::{decode, files, render};

/// (snapshot name, files).
const CASES: &[(&str, &[(&str, &str)])] = &[
    ("yaml_syntax", &[("a.yaml", "actions: [1, 2\n")]),
    (
        "yaml_two_documents",
        &[("a.yaml", "actions: {}\n---\ntasks: {}\n")],
    ),
    (
        "yaml_merge_not_a_map",
        &[("a.yaml", "secrets:\n  <<: 3\n  A: abcd\n")],
    ),
    (
        "yaml_merge_list_of_scalars",
        &[("a.yaml", "base: &b { A: abcd }\nsecrets:\n  <<: [*b, 3]\n")],
    ),
    (
        "yaml_recursive_alias",
        &[("a.yaml", "secrets: &a\n  A: [*a]\n")],
    ),
    (
        "yaml_duplicate_key",
        &[(
            "a.yaml",
            "actions:\n  a: { type: script, script: x }\n  a: { type: script, script: y }\n",
        )],
    ),
    ("not_a_mapping", &[("a.yaml", "- actions\n- tasks\n")]),
    ("sops_file", &[("secrets.sops.yaml", "secrets: ENC[...]\n")]),
    (
        "unknown_top_level_keys",
        &[(
            "a.yaml",
            "action: {}\nzzz: 1\nconnections:\n  db: {}\nconnection_types:\n  _pg: {}\n",
        )],
    ),
    (
        "duplicate_names_across_files",
        &[
            (
                "a.yaml",
                "actions:\n  build: { type: script, script: a }\nsecrets:\n  TOKEN: abcd\n",
            ),
            (
                "b.yaml",
                "actions:\n  build: { type: script, script: b }\nsecrets:\n  TOKEN: efgh\n",
            ),
        ],
    ),
    (
        "invalid_names",
        &[(
            "a.yaml",
            "actions:\n  _mine: { type: script, script: x }\n  has space: { type: script, script: x }\n  aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: { type: script, script: x }\nsecrets:\n  my-token: abcd\n  nested:\n    bad-key: abcd\n",
        )],
    ),
    (
        "step_names",
        &[(
            "a.yaml",
            "tasks:\n  t:\n    flow:\n      input: { action: a }\n      2nd: { action: a }\n      not: { action: a }\n      say-hi: { action: a }\n      say_hi: { action: a }\n",
        )],
    ),
    (
        "wrong_kinds",
        &[(
            "a.yaml",
            "actions:\n  a:\n    type: [script]\n  b:\n    type: script\n    script: x\n    tags: deploy\n    args: [{ a: 1 }]\n    input:\n      x: { required: 'yes', order: 1.5, options: a }\n      y: string\n    env: [A]\ntriggers: []\ntasks:\n  t:\n    flow:\n      s:\n        action: b\n        depends_on: s0\n        input: [1]\n        continue_on_failure: 1\n",
        )],
    ),
    (
        "non_string_keys",
        &[(
            "a.yaml",
            "actions:\n  ? [a, b]\n  : { type: script, script: x }\n",
        )],
    ),
    (
        "durations",
        &[(
            "a.yaml",
            "actions:\n  a: { type: script, script: x, timeout: 5x }\n  b: { type: script, script: x, timeout: 0 }\n  c: { type: script, script: x, timeout: 2d }\n  d: { type: script, script: x, timeout: 1m1h }\n  e: { type: script, script: x, timeout: [1] }\n  f: { type: script, script: x, timeout: 10 }\n  g: { type: script, script: x, timeout: 1m30 }\n  h: { type: script, script: x, timeout: m }\n  i: { type: script, script: x, timeout: \"99999999999999999999\" }\n",
        )],
    ),
    (
        "resources",
        &[(
            "a.yaml",
            "actions:\n  a:\n    type: script\n    script: x\n    resources: { cpu: 2 cores, memory: 512MB, disk: 1Gi }\n  b:\n    type: script\n    script: x\n    resources: { cpu: 500m, memory: 1Gi }\n",
        )],
    ),
    (
        "action_types",
        &[(
            "a.yaml",
            "actions:\n  a: { script: x }\n  b: { type: scrpt }\n  c: { type: robot }\n  d: { type: agent }\n  e: { type: docker, image: alpine }\n  f: { type: pod, image: alpine, manifest: [] }\n  g: { type: approval, message: ok }\n  h: { type: pod }\n",
        )],
    ),
    (
        "pod_manifest_forbidden_fields",
        &[(
            "a.yaml",
            "actions:\n  a:\n    type: pod\n    image: alpine\n    manifest:\n      metadata: { name: mine, labels: { team: ops } }\n      spec:\n        hostPID: true\n        restartPolicy: Always\n        volumes: [{ name: root, hostPath: { path: / } }]\n        initContainers: [{ name: workspace-init, image: evil }]\n        containers:\n          - name: step\n            image: other\n            securityContext: { privileged: true }\n            volumeMounts: [{ name: root, mountPath: /var/run/docker.sock }]\n  b:\n    type: script\n    runner: pod\n    script: x\n    manifest: { spec: { hostNetwork: true, nodeSelector: { pool: batch } } }\n  ok:\n    type: pod\n    image: alpine\n    manifest: { spec: { restartPolicy: Never, containers: [{ name: step, resources: { limits: { cpu: '2' } } }] } }\n",
        )],
    ),
    (
        "script_code",
        &[(
            "a.yaml",
            "actions:\n  both: { type: script, script: x, source: run.sh }\n  neither: { type: script }\n  empty: { type: script, script: '' }\n  shell-both: { type: shell, cmd: x, script: run.sh }\n  shell-neither: { type: shell }\n  source-empty: { type: script, source: '' }\n",
        )],
    ),
    (
        "misplaced_action_keys",
        &[(
            "a.yaml",
            "actions:\n  a: { type: script, script: x, cmd: y, image: alpine, manifest: {}, entrypoint: [sh], task: t, message: m }\n  b: { type: shell, cmd: x, source: run.sh }\n  c: { type: docker, image: alpine, language: python, manifest: {} }\n  d: { type: task, task: t, env: { A: b }, input: {} }\n  e: { type: approval, message: m, retry: { max_attempts: 2 }, env: {} }\n  f: { type: pod, image: alpine, runner: local }\n  g: { type: script, script: x, imgae: alpine }\n  h: { type: script, script: x, zzz: 1 }\n  i: { type: script, script: x, depends_on: [a] }\n",
        )],
    ),
    (
        "script_fields",
        &[(
            "a.yaml",
            "actions:\n  a:\n    type: script\n    script: x\n    runner: vm\n    language: pyton\n    interpreter: 'python3 -u'\n    args: [a, '']\n  b:\n    type: script\n    script: x\n    runner: docker\n    image: alpine\n    language: js\n    interpreter: []\n  c:\n    type: script\n    script: x\n    runner: pod\n    manifest: { spec: {} }\n    language: go\n  d:\n    type: script\n    script: x\n    language: cobol\n  e:\n    type: script\n    script: x\n    language: ts\n",
        )],
    ),
    (
        "source_paths",
        &[(
            "a.yaml",
            "actions:\n  a: { type: script, source: /etc/passwd }\n  b: { type: script, source: ../outside.sh }\n  c: { type: script, source: scripts/missing.sh }\n  d: { type: script, source: ./scripts/deploy.sh }\n  e: { type: script, source: 'scripts/{{ input.name }}.sh' }\n  f: { type: shell, script: nope.sh }\n",
        )],
    ),
    (
        "workdir_and_env",
        &[(
            "a.yaml",
            "actions:\n  a:\n    type: script\n    script: x\n    workdir: /tmp\n    env: { STROEM_X: a, INPUT_Y: b, 'A-B': c, OK: [1], FINE: 3 }\n  b:\n    type: script\n    script: x\n    workdir: ../up\n  c:\n    type: docker\n    image: alpine\n    workdir: rel\n    cmd: x\n    command: [y]\n  d:\n    type: docker\n    image: ''\n  e:\n    type: docker\n",
        )],
    ),
    (
        "task_and_approval_actions",
        &[(
            "a.yaml",
            "actions:\n  a: { type: task }\n  b: { type: approval }\n  c: { type: approval, message: ok, timeout: 8d }\n  d: { type: approval, message: ok, timeout: 3d }\n",
        )],
    ),
    (
        "input_types",
        &[(
            "a.yaml",
            "actions:\n  a:\n    type: script\n    script: x\n    input:\n      a: { type: strng }\n      b: { type: postgres }\n      1x: { type: string }\n      c: { type: integer, default: abc }\n      d: { type: string, options: [a, b], default: c }\n      e: { type: integer, options: [1, two] }\n      f: { type: boolean, default: 'TRUE' }\n      g: { type: date, default: 2024-13-01 }\n      h: { type: datetime, default: '2024-01-01T00:00:00Z' }\n      i: { type: number, default: '1.5' }\n      j: { type: string, default: '{{ secret.X }}' }\n      k: { type: integer, default: 2.0 }\n",
        )],
    ),
    (
        "input_multiple_and_options",
        &[(
            "a.yaml",
            "actions:\n  a:\n    type: script\n    script: x\n    input:\n      a: { type: integer, multiple: true, options: [1] }\n      b: { multiple: true, secret: true, options: [x] }\n      c: { multiple: true, options: [x, y], default: x }\n      d: { multiple: true, options: [x, y], default: [x, z] }\n      e: { options: [] }\n      f: { options: [a, a, ''] }\n      g: { allow_custom: true }\n      h: { multiple: true }\n      i: { required: true, default: x }\n      j: { options: [a], allow_custom: true, default: b }\n",
        )],
    ),
    (
        "input_variable_collisions",
        &[(
            "a.yaml",
            "tasks:\n  t:\n    input:\n      release-tag: {}\n      release_tag: {}\n      Release_Tag: {}\n    flow:\n      s: { action: a }\n",
        )],
    ),
    (
        "output_schema",
        &[(
            "a.yaml",
            "actions:\n  a:\n    type: script\n    script: x\n    output:\n      s: { type: array, multiple: true, order: 1 }\n      t: { type: lst }\n      u: { type: integer, default: x, description: count, requierd: true }\n",
        )],
    ),
    (
        "task_fields",
        &[(
            "a.yaml",
            "tasks:\n  no-flow: { name: x }\n  list-flow:\n    flow:\n      - build: { action: a }\n  empty-flow: { flow: {} }\n  modes:\n    mode: lokal\n    folder: /abs/../x\n    timeout: 8d\n    flow: { s: { action: a } }\n  later:\n    mode: local\n    retry: { max_attempts: 2 }\n    concurrency: 0\n    priority: 5\n    on_suspended: [ { action: a } ]\n    flow: { s: { action: a } }\n  typo:\n    flwo: {}\n    flow: { s: { action: a } }\n  flat:\n    action: a\n    flow: { s: { action: a } }\n",
        )],
    ),
    (
        "step_action_forms",
        &[(
            "a.yaml",
            "tasks:\n  t:\n    flow:\n      none: { input: {} }\n      both: { action: a, type: script, script: x }\n      bad: { action: [a] }\n      stray: { action: a, script: x }\n      short-output: { type: script, script: x, output: {} }\n      short-bad-type: { type: nope, script: x }\n      inline-missing: { action: { script: x } }\n      typo: { action: a, depend_on: [none] }\n",
        )],
    ),
    (
        "step_fields",
        &[(
            "a.yaml",
            "tasks:\n  t:\n    flow:\n      a: { action: x, when: yes please }\n      b: { action: x, when: 3 }\n      c: { action: x, for_each: items }\n      d: { action: x, for_each: { a: 1 } }\n      e: { action: x, sequential: true }\n      f: { action: x, timeout: 25h }\n      g: { action: x, retry: { max_attempts: 0, delay: 2h, backoff: linear, jitter: true } }\n      h: { action: x, retry: { max_attempts: 11, backoff: exponentail, delay: 0 } }\n      i: { action: x, retry: { max_attempts: 2, dealy: 5s } }\n      j: { action: { type: approval, message: ok }, retry: { max_attempts: 2 } }\n",
        )],
    ),
    (
        "hooks",
        &[(
            "a.yaml",
            "on_error: { action: a }\non_success:\n  - input: {}\n  - action: a\n    inptu: {}\n  - type: script\n    script: echo done\n    name: Done\ntasks:\n  t:\n    flow: { s: { action: a } }\n    on_cancel: [ 3 ]\n",
        )],
    ),
    (
        "trigger_fields",
        &[(
            "a.yaml",
            "triggers:\n  a: { task: t }\n  b: { type: cron, task: t }\n  c: { type: event_source }\n  d: { type: nothing-like-it }\n  e: { type: scheduler }\n  f: { type: scheduler, task: t, cron: '* * * * *', concurrency: queue, catch_up: latest, secret: x }\n  g: { type: scheduler, task: t, cron: '* * * * *', catch_up: all, enabled: maybe }\n",
        )],
    ),
    (
        "webhook_fields",
        &[(
            "a.yaml",
            "triggers:\n  open: { type: webhook, task: t }\n  named: { type: webhook, task: t, name: 'a b', secret: '' }\n  sync: { type: webhook, task: t, secret: x, mode: sync, timeout_secs: 0, cron: '* * * * *' }\n  modes: { type: webhook, task: t, secret: x, mode: later, timeout_secs: 301 }\n",
        )],
    ),
    (
        "secrets",
        &[(
            "a.yaml",
            "secrets:\n  EMPTY: ''\n  NULL_ONE:\n  LIST: [a]\n  NUMBER: 12345\n  nested:\n    inner: ''\n",
        )],
    ),
];

#[test]
fn diagnostics_snapshots() {
    for (name, list) in CASES {
        let loaded = decode(&files(list));
        let rendered = render(&loaded);
        assert!(!rendered.is_empty(), "case {name} has no diagnostics");
        insta::assert_snapshot!(*name, rendered);
    }
}

#[test]
fn alias_bombs_and_deep_nesting_are_reported() {
    let mut bomb = String::from("secrets:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let p = i - 1;
        bomb.push_str(&format!(
            "  a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let deep = format!("secrets: {}{}\n", "[".repeat(200), "]".repeat(200));
    let loaded = decode(&files(&[("bomb.yaml", &bomb), ("deep.yaml", &deep)]));
    insta::assert_snapshot!(render(&loaded));
}

#[test]
fn huge_for_each_lists_are_reported() {
    let items = vec!["1"; super::super::step::MAX_ITEMS + 1].join(", ");
    let text = format!("tasks:\n  t:\n    flow:\n      s: {{ action: a, for_each: [{items}] }}\n");
    let loaded = decode(&files(&[("a.yaml", &text)]));
    insta::assert_snapshot!(render(&loaded));
}
