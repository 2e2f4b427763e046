//! Concurrent commands never corrupt state: 20 creates with distinct ids at
//! once, and 5 different operations racing on one id.

mod support;
use support::*;
use std::path::Path;
use std::thread;

fn all_states_parse(root: &Path) {
    for e in std::fs::read_dir(root).unwrap().flatten() {
        let p = e.path().join("state.json");
        if p.exists() {
            let data = std::fs::read(&p).unwrap();
            serde_json::from_slice::<serde_json::Value>(&data).unwrap_or_else(|err| panic!("{} corrupt: {err}", p.display()));
        }
    }
}

#[test]
fn twenty_concurrent_creates() {
    let s = Scratch::new("conc20");
    let root = s.path().join("root");
    let b = bundle(s.path(), "b", &["sleep", "100"], |_| {});
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let (root, b, out) = (root.clone(), b.clone(), s.path().join(format!("out{i}")));
            thread::spawn(move || nx_detached(&root, &["create", "--bundle", b.to_str().unwrap(), &format!("conc20-{i}")], &out).success())
        })
        .collect();
    let ok: Vec<bool> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(ok.iter().all(|x| *x), "every create succeeds: {ok:?}");
    all_states_parse(&root);
    let l = nx(&root, &["list", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&l.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 20);
    assert!(v.as_array().unwrap().iter().all(|c| c["status"] == "created"));
    let dels: Vec<_> = (0..20)
        .map(|i| {
            let root = root.clone();
            thread::spawn(move || {
                let d = nx(&root, &["delete", "--force", &format!("conc20-{i}")]);
                (d.status.success(), stderr(&d))
            })
        })
        .collect();
    let failed: Vec<String> = dels.into_iter().map(|h| h.join().unwrap()).filter(|(ok, _)| !ok).map(|(_, e)| e).collect();
    assert!(failed.is_empty(), "every container ends deletable: {failed:?}");
    assert!(nx(&root, &["list", "-q"]).stdout.is_empty());
}

#[test]
fn racing_operations_on_one_id() {
    let s = Scratch::new("conc1");
    let root = s.path().join("root");
    let b = bundle(s.path(), "b", &["sleep", "100"], |_| {});
    for round in 0..3 {
        let id = format!("conc1-{round}");
        let ops: Vec<Vec<String>> = vec![
            vec!["create".into(), "--bundle".into(), b.to_str().unwrap().into(), id.clone()],
            vec!["create".into(), "--bundle".into(), b.to_str().unwrap().into(), id.clone()],
            vec!["start".into(), id.clone()],
            vec!["state".into(), id.clone()],
            vec!["kill".into(), id.clone(), "KILL".into()],
        ];
        let handles: Vec<_> = ops
            .into_iter()
            .enumerate()
            .map(|(i, op)| {
                let (root, out) = (root.clone(), s.path().join(format!("o{round}-{i}")));
                thread::spawn(move || {
                    let args: Vec<&str> = op.iter().map(String::as_str).collect();
                    nx_detached(&root, &args, &out).success()
                })
            })
            .collect();
        let res: Vec<bool> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(res[0] ^ res[1], "exactly one of two creates wins: {res:?}");
        all_states_parse(&root);
        let st = status_of(&root, &id);
        assert!(["created", "running", "stopped"].contains(&st.as_str()), "{st}");
        let d = nx(&root, &["delete", "--force", &id]);
        assert!(d.status.success(), "{}", stderr(&d));
        assert!(!root.join(&id).exists());
    }
}
