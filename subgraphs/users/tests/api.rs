//! The users subgraph through its HTTP app, on a fresh SQLite and a fresh PostgreSQL database.

use axum::{
    body::Body,
    http::{header, Request, StatusCode},
    Router,
};
use serde_json::{json, Value};
use taproom_common::{
    db::Db,
    http::Limits,
    test_on_both_databases,
    testing::{data, error_code, graphql, send, TestDb},
};
use taproom_users::{credentials::TokenKeys, db, AppState};

const SECRET: &str = "test-secret-key-that-is-long-enough-0123";
const PASSWORD: &str = "Secret123";

struct TestApp {
    app: Router,
    db: Db,
}

impl TestApp {
    async fn start(test_db: &TestDb) -> Self {
        Self::with_ttl(test_db, chrono::Duration::hours(1)).await
    }

    async fn with_ttl(test_db: &TestDb, token_ttl: chrono::Duration) -> Self {
        let db = test_db.connect().await;
        db.migrate(&db::migrations()).await.expect("migrates");
        let state = AppState {
            db: db.clone(),
            keys: TokenKeys::new(SECRET),
            token_ttl,
            throttle: Default::default(),
        };
        TestApp {
            app: taproom_users::app(state, Limits::default()),
            db,
        }
    }

    async fn gql(&self, query: &str, variables: Value, token: Option<&str>) -> Value {
        graphql(&self.app, query, variables, token).await
    }

    /// Registers `username` with [`PASSWORD`]; returns (token, id).
    async fn register(&self, username: &str) -> (String, String) {
        let response = self
            .gql(
                "mutation($input: RegisterInput!) { register(input: $input) { token user { id } } }",
                json!({ "input": { "username": username, "email": format!("{username}@example.com"), "password": PASSWORD } }),
                None,
            )
            .await;
        let payload = &data(&response)["register"];
        (
            payload["token"].as_str().expect("token").to_owned(),
            payload["user"]["id"].as_str().expect("id").to_owned(),
        )
    }

    async fn login(&self, username: &str, password: &str) -> Value {
        self.gql(
            "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token user { username } } }",
            json!({ "u": username, "p": password }),
            None,
        )
        .await
    }

    async fn username_exists(&self, username: &str) -> bool {
        let response = self
            .gql(
                "query($u: String!) { usernameExists(username: $u) }",
                json!({ "u": username }),
                None,
            )
            .await;
        data(&response)["usernameExists"].as_bool().expect("bool")
    }

    async fn me(&self, token: Option<&str>) -> Value {
        self.gql("{ me { id username email isAdmin } }", json!({}), token)
            .await
    }
}

/// `Query.users`: every account in username order for admins, searched by username, paged with no
/// gaps or repeats; names shown, emails not; FORBIDDEN for customers; rules on the arguments.
async fn admins_page_every_account(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    for name in ["zoe", "Bob_1", "alice", "bob.2", "carol", "bobby"] {
        t.register(name).await;
    }
    let (customer, _) = t.register("dave").await;
    t.register("root").await;
    assert!(db::promote_to_admin(&t.db, "root").await.expect("promotes"));
    let login = t.login("root", PASSWORD).await;
    let admin = data(&login)["login"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let alice = t.login("alice", PASSWORD).await;
    let alice = data(&alice)["login"]["token"].as_str().expect("token");
    t.gql(
        "mutation { updateProfile(input: { firstName: \"Alice\" }) { id } }",
        json!({}),
        Some(alice),
    )
    .await;

    let query = "query($f: Int, $after: String, $s: String) { users(first: $f, after: $after, search: $s) { totalCount pageInfo { hasNextPage hasPreviousPage endCursor } edges { cursor node { username firstName email } } } }";
    let mut names = Vec::new();
    let mut after = Value::Null;
    loop {
        let response = t
            .gql(query, json!({ "f": 3, "after": after }), Some(&admin))
            .await;
        let page = &data(&response)["users"];
        assert_eq!(page["totalCount"], json!(8));
        assert_eq!(page["pageInfo"]["hasPreviousPage"], json!(!after.is_null()));
        for edge in page["edges"].as_array().expect("edges") {
            names.push(
                edge["node"]["username"]
                    .as_str()
                    .expect("present")
                    .to_owned(),
            );
            if edge["node"]["username"] == json!("alice") {
                assert_eq!(
                    edge["node"]["firstName"],
                    json!("Alice"),
                    "admins see names"
                );
            }
            if edge["node"]["username"] != json!("root") {
                assert_eq!(edge["node"]["email"], Value::Null, "only their own email");
            }
        }
        if page["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(
        names,
        ["alice", "bob.2", "Bob_1", "bobby", "carol", "dave", "root", "zoe"]
    );

    // A page is one statement however many accounts it holds (names need no more), the count one more.
    let cost = |first: i64, count: bool| {
        let t = &t;
        let admin = &admin;
        async move {
            let total = if count { "totalCount" } else { "" };
            let before = t.db.statements();
            let response = t
                .gql(
                    &format!("query($f: Int) {{ users(first: $f) {{ {total} edges {{ node {{ username firstName lastName }} }} }} }}"),
                    json!({ "f": first }),
                    Some(admin),
                )
                .await;
            data(&response);
            t.db.statements() - before
        }
    };
    let one = cost(1, false).await;
    assert_eq!(
        cost(8, false).await,
        one,
        "the same for eight accounts as for one"
    );
    assert_eq!(cost(8, true).await, one + 1, "the count is one statement");

    let searched = t.gql(query, json!({ "s": "BOB" }), Some(&admin)).await;
    let page = &data(&searched)["users"];
    assert_eq!(page["totalCount"], json!(3));
    assert_eq!(page["edges"].as_array().expect("present").len(), 3);
    let literal = t.gql(query, json!({ "s": "b_" }), Some(&admin)).await;
    assert_eq!(
        data(&literal)["users"]["totalCount"],
        json!(1),
        "_ is literal: only Bob_1"
    );

    for (variables, field) in [
        (json!({ "f": 101 }), "first"),
        (json!({ "after": "nope" }), "after"),
        (json!({ "s": "x".repeat(33) }), "search"),
        (json!({ "s": "a\u{0}" }), "search"),
    ] {
        let refused = t.gql(query, variables.clone(), Some(&admin)).await;
        assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{variables}");
        assert_eq!(refused["errors"][0]["extensions"]["field"], json!(field));
    }
    assert_eq!(
        error_code(&t.gql(query, json!({}), Some(&customer)).await),
        "FORBIDDEN"
    );
    assert_eq!(
        error_code(&t.gql(query, json!({}), None).await),
        "UNAUTHENTICATED"
    );
}

/// `/auth/introspect` is served like `/graphql`: in the request's span, its request id echoed.
async fn token_checks_echo_the_request_id(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    let (token, _) = t.register("checker").await;
    let answer = send(
        &t.app,
        Request::post("/auth/introspect")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header("x-request-id", "check-1")
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body["active"], json!(true));
    assert_eq!(answer.headers["x-request-id"], "check-1");
}

/// The original app's login scenario.
async fn login_scenario(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    assert!(!t.username_exists("alice").await);
    let (_, id) = t.register("alice").await;
    assert!(t.username_exists("alice").await);
    assert!(
        t.username_exists("ALICE").await,
        "usernames are case-insensitive"
    );

    let login = t.login("alice", PASSWORD).await;
    let token = data(&login)["login"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let me = t.me(Some(&token)).await;
    assert_eq!(
        data(&me)["me"],
        json!({ "id": id, "username": "alice", "email": "alice@example.com", "isAdmin": false })
    );

    let mut tampered = token.clone().into_bytes();
    let last = tampered.last_mut().expect("non-empty");
    *last = if *last == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    assert_eq!(error_code(&t.me(Some(&tampered)).await), "UNAUTHENTICATED");

    let logout = t.gql("mutation { logout }", json!({}), Some(&token)).await;
    assert_eq!(data(&logout)["logout"], json!(true));
    let again = t.gql("mutation { logout }", json!({}), Some(&token)).await;
    assert_eq!(error_code(&again), "UNAUTHENTICATED");
    assert_eq!(error_code(&t.me(Some(&token)).await), "UNAUTHENTICATED");
    assert_eq!(data(&t.me(None).await)["me"], Value::Null);
}

/// Unknown username and wrong password look the same to the client.
async fn login_failures_are_indistinguishable(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    t.register("bob").await;
    let wrong_password = t.login("bob", "Wrong1234").await;
    let unknown_user = t.login("nobody", PASSWORD).await;
    assert_eq!(error_code(&wrong_password), "UNAUTHENTICATED");
    assert_eq!(wrong_password["errors"], unknown_user["errors"]);
    assert_eq!(wrong_password["data"], Value::Null);
}

/// Every rule of RegisterInput: BAD_USER_INPUT naming the field, and no account created.
async fn registration_rules(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    let cases = [
        (json!({"username": "ab"}), "username"),
        (json!({"username": "bad name"}), "username"),
        (json!({"username": "x".repeat(33)}), "username"),
        (json!({"email": "not-an-email"}), "email"),
        (json!({"email": "a@b"}), "email"),
        (json!({"password": "Short1"}), "password"),
        (json!({"password": "nouppercase1"}), "password"),
        (json!({"password": "NOLOWERCASE1"}), "password"),
        (json!({"password": "NoDigitsAtAll"}), "password"),
        (
            json!({"password": format!("Aa1{}", "x".repeat(126))}),
            "password",
        ),
        (json!({"firstName": "x".repeat(101)}), "firstName"),
    ];
    for (override_fields, field) in cases {
        let mut input =
            json!({ "username": "carol", "email": "carol@example.com", "password": PASSWORD });
        for (key, value) in override_fields.as_object().expect("object") {
            input[key] = value.clone();
        }
        let response = t
            .gql(
                "mutation($input: RegisterInput!) { register(input: $input) { token } }",
                json!({ "input": input }),
                None,
            )
            .await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT", "{input}");
        assert_eq!(
            response["errors"][0]["extensions"]["field"],
            json!(field),
            "{input}"
        );
        assert_eq!(response["data"], Value::Null);
    }
    assert!(!t.username_exists("carol").await);
    assert!(!t.username_exists("ab").await);
}

/// Usernames and emails are unique regardless of case, as enforced by the database.
async fn unique_values_conflict_in_any_case(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    t.register("dave").await;
    let t = &t;
    let register = |username: &str, email: &str| {
        let variables =
            json!({ "input": { "username": username, "email": email, "password": PASSWORD } });
        async move {
            t.gql(
                "mutation($input: RegisterInput!) { register(input: $input) { token } }",
                variables,
                None,
            )
            .await
        }
    };
    let same_name = register("DAVE", "other@example.com").await;
    assert_eq!(error_code(&same_name), "CONFLICT");
    assert_eq!(
        same_name["errors"][0]["extensions"]["field"],
        json!("username")
    );
    let same_email = register("dave2", "Dave@Example.COM").await;
    assert_eq!(error_code(&same_email), "CONFLICT");
    assert_eq!(
        same_email["errors"][0]["extensions"]["field"],
        json!("email")
    );
    assert!(!t.username_exists("dave2").await);

    let (token, _) = t.register("erin").await;
    let taken = t
        .gql(
            r#"mutation { updateProfile(input: { email: "DAVE@example.com" }) { email } }"#,
            json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(error_code(&taken), "CONFLICT");
    assert_eq!(
        data(&t.me(Some(&token)).await)["me"]["email"],
        json!("erin@example.com")
    );
}

/// The report: 200 aliased `login`s and the right password in one request cost 200 argon2 checks,
/// and the one alias without an error gave the password away. Now an operation with more than one
/// credential-checking field (aliases, fragments, different fields alike) is refused before any runs.
async fn credential_fields_run_at_most_once_per_operation(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    t.register("victim").await;
    let mut guesses: String = (0..200)
        .map(|i| {
            format!(r#"g{i}: login(username: "victim", password: "Guess{i:04}A") {{ token }} "#)
        })
        .collect();
    guesses.push_str(r#"right: login(username: "victim", password: "Secret123") { token }"#);
    let through_fragments = r#"mutation { ...A ...B } fragment A on Mutation { login(username: "victim", password: "Secret123") { token } } fragment B on Mutation { deleteAccount(password: "Secret123") }"#;
    for document in [
        format!("mutation {{ {guesses} }}"),
        through_fragments.to_owned(),
        r#"mutation { register(input: {username: "x1", email: "x1@example.com", password: "Secret123"}) { token } login(username: "victim", password: "Secret123") { token } }"#.to_owned(),
    ] {
        let response = t.gql(&document, json!({}), None).await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT", "{response}");
        assert_eq!(response["errors"].as_array().expect("errors").len(), 1);
        assert!(response.get("data").is_none_or(Value::is_null), "nothing ran: {response}");
        let message = response["errors"][0]["message"].as_str().expect("message");
        assert!(message.contains("at most once"), "{message}");
    }
    assert!(
        !t.username_exists("x1").await,
        "the register beside it did not run"
    );
    // One check per operation still works, and so does a login beside other fields.
    let one = t
        .gql(
            r#"mutation { login(username: "victim", password: "Secret123") { token } logout }"#,
            json!({}),
            None,
        )
        .await;
    assert!(one["data"]["login"]["token"].is_string(), "{one}");
}

/// Failed sign-ins for a username are throttled with growing delays (RATE_LIMITED with
/// retryAfterSeconds, the right password refused too while blocked, no argon2 work done); other
/// usernames are not affected; once the delay has passed the right password signs in.
async fn failed_sign_ins_are_throttled_per_username(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    t.register("wanda").await;
    t.register("xavier").await;
    // Exactly the documented five wrong passwords are checked; the sixth attempt is refused,
    // with the right password too.
    for _ in 0..5 {
        let wrong = t.login("wanda", "Wrong0000A").await;
        assert_eq!(error_code(&wrong), "UNAUTHENTICATED", "{wrong}");
    }
    for password in ["Wrong0000A", PASSWORD] {
        let blocked = t.login("WANDA", password).await;
        assert_eq!(error_code(&blocked), "RATE_LIMITED", "{blocked}");
        let retry = blocked["errors"][0]["extensions"]["retryAfterSeconds"]
            .as_u64()
            .expect("a retry hint");
        assert!((1..=2).contains(&retry), "{blocked}");
    }
    assert!(data(&t.login("xavier", PASSWORD).await)["login"]["token"].is_string());
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(data(&t.login("wanda", PASSWORD).await)["login"]["token"].is_string());
}

/// email and isAdmin are for the user themself only.
async fn email_and_admin_flag_are_private(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    let (admin_token, admin_id) = t.register("admin1").await;
    assert!(db::promote_to_admin(&t.db, "admin1")
        .await
        .expect("promotes"));
    let (customer_token, _) = t.register("frank").await;

    let query = "query($id: ID!) { user(id: $id) { username email isAdmin } }";
    let own = t
        .gql(query, json!({ "id": admin_id }), Some(&admin_token))
        .await;
    assert_eq!(
        data(&own)["user"],
        json!({ "username": "admin1", "email": "admin1@example.com", "isAdmin": true })
    );
    for token in [Some(customer_token.as_str()), None] {
        let other = t.gql(query, json!({ "id": admin_id }), token).await;
        assert_eq!(
            data(&other)["user"],
            json!({ "username": "admin1", "email": null, "isAdmin": false })
        );
    }
    let missing = t.gql(query, json!({ "id": "999999" }), None).await;
    assert_eq!(data(&missing)["user"], Value::Null);
    let not_a_number = t.gql(query, json!({ "id": "abc" }), None).await;
    assert_eq!(data(&not_a_number)["user"], Value::Null);
}

/// Real names are for the user themself and admins: ids are sequential, so anyone could list them.
async fn names_are_private(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    let (admin_token, _) = t.register("admin2").await;
    assert!(db::promote_to_admin(&t.db, "admin2")
        .await
        .expect("promotes"));
    let (gina_token, gina_id) = t.register("gina").await;
    let (other_token, _) = t.register("hugo").await;
    t.gql(
        "mutation { updateProfile(input: { firstName: \"Gina\", lastName: \"Lollo\" }) { id } }",
        json!({}),
        Some(&gina_token),
    )
    .await;

    let query = "query($id: ID!) { user(id: $id) { username firstName lastName } }";
    let named = json!({ "username": "gina", "firstName": "Gina", "lastName": "Lollo" });
    let hidden = json!({ "username": "gina", "firstName": null, "lastName": null });
    for (token, expected) in [
        (Some(gina_token.as_str()), &named),
        (Some(admin_token.as_str()), &named),
        (Some(other_token.as_str()), &hidden),
        (None, &hidden),
    ] {
        let response = t.gql(query, json!({ "id": gina_id }), token).await;
        assert_eq!(&data(&response)["user"], expected, "token {token:?}");
    }
}

/// Only the given profile fields change; null clears a name; email cannot be removed.
async fn profile_updates_change_only_given_fields(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    let (token, _) = t.register("gina").await;
    let t = &t;
    let token = &token;
    let update = |input: Value| async move {
        t.gql(
                "mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { email firstName lastName timeModified } }",
                json!({ "input": input }),
                Some(token),
            )
            .await
    };
    let first = update(json!({ "firstName": "Gina", "lastName": "Lollo" })).await;
    assert_eq!(data(&first)["updateProfile"]["firstName"], json!("Gina"));
    assert!(data(&first)["updateProfile"]["timeModified"].is_string());
    let second = update(json!({ "lastName": null })).await;
    let profile = &data(&second)["updateProfile"];
    assert_eq!(profile["firstName"], json!("Gina"));
    assert_eq!(profile["lastName"], Value::Null);
    assert_eq!(profile["email"], json!("gina@example.com"));
    let removed = update(json!({ "email": null })).await;
    assert_eq!(error_code(&removed), "BAD_USER_INPUT");
    let invalid = update(json!({ "email": "nope", "firstName": "Changed" })).await;
    assert_eq!(error_code(&invalid), "BAD_USER_INPUT");
    let unchanged = t
        .gql("{ me { email firstName } }", json!({}), Some(token))
        .await;
    assert_eq!(
        data(&unchanged)["me"],
        json!({ "email": "gina@example.com", "firstName": "Gina" })
    );
    let no_token = t
        .gql(
            r#"mutation { updateProfile(input: { firstName: "X" }) { id } }"#,
            json!({}),
            None,
        )
        .await;
    assert_eq!(error_code(&no_token), "UNAUTHENTICATED");
}

/// changePassword re-checks the current password and replaces every token with a fresh one.
async fn password_change_revokes_other_tokens(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    let (first, _) = t.register("hank").await;
    let second = data(&t.login("hank", PASSWORD).await)["login"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let change = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) { token user { username } } }";

    let wrong = t
        .gql(
            change,
            json!({ "c": "Wrong1234", "n": "Newpass123" }),
            Some(&first),
        )
        .await;
    assert_eq!(error_code(&wrong), "BAD_USER_INPUT");
    assert_eq!(
        wrong["errors"][0]["extensions"]["field"],
        json!("currentPassword")
    );
    let weak = t
        .gql(change, json!({ "c": PASSWORD, "n": "weak" }), Some(&first))
        .await;
    assert_eq!(
        weak["errors"][0]["extensions"]["field"],
        json!("newPassword")
    );
    assert!(
        data(&t.me(Some(&second)).await)["me"].is_object(),
        "failed changes revoke nothing"
    );

    let changed = t
        .gql(
            change,
            json!({ "c": PASSWORD, "n": "Newpass123" }),
            Some(&first),
        )
        .await;
    let fresh = data(&changed)["changePassword"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(error_code(&t.me(Some(&first)).await), "UNAUTHENTICATED");
    assert_eq!(error_code(&t.me(Some(&second)).await), "UNAUTHENTICATED");
    assert_eq!(
        data(&t.me(Some(&fresh)).await)["me"]["username"],
        json!("hank")
    );
    assert_eq!(
        error_code(&t.login("hank", PASSWORD).await),
        "UNAUTHENTICATED"
    );
    assert!(data(&t.login("hank", "Newpass123").await)["login"]["token"].is_string());
}

/// deleteAccount re-checks the password, then removes the account and its tokens.
async fn account_deletion(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    let (token, _) = t.register("ivan").await;
    let delete = "mutation($p: String!) { deleteAccount(password: $p) }";
    let wrong = t
        .gql(delete, json!({ "p": "Wrong1234" }), Some(&token))
        .await;
    assert_eq!(error_code(&wrong), "BAD_USER_INPUT");
    assert!(t.username_exists("ivan").await);
    let anonymous = t.gql(delete, json!({ "p": PASSWORD }), None).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");

    let deleted = t.gql(delete, json!({ "p": PASSWORD }), Some(&token)).await;
    assert_eq!(data(&deleted)["deleteAccount"], json!(true));
    assert_eq!(error_code(&t.me(Some(&token)).await), "UNAUTHENTICATED");
    assert_eq!(
        error_code(&t.login("ivan", PASSWORD).await),
        "UNAUTHENTICATED"
    );
    assert!(!t.username_exists("ivan").await);
    t.register("ivan").await;
}

/// An expired token is refused like a revoked one.
async fn expired_tokens_are_refused(test_db: TestDb) {
    let t = TestApp::with_ttl(&test_db, chrono::Duration::seconds(-1)).await;
    let (token, _) = t.register("judy").await;
    assert_eq!(error_code(&t.me(Some(&token)).await), "UNAUTHENTICATED");
}

/// The router resolves 100 users in one `_entities` call: one SQL statement.
async fn entity_batches_cost_one_statement(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    let mut ids = Vec::new();
    for i in 0..100 {
        let name = format!("user{i}");
        let row = db::insert_user(
            &t.db,
            &db::NewUser {
                username: &name,
                email: &format!("{name}@example.com"),
                password_hash: "not-a-real-hash",
                first_name: None,
                last_name: None,
                is_admin: false,
            },
        )
        .await
        .expect("inserts");
        ids.push(row.id.to_string());
    }
    let mut representations: Vec<Value> = ids
        .iter()
        .map(|id| json!({ "__typename": "User", "id": id }))
        .collect();
    representations.push(json!({ "__typename": "User", "id": "999999" }));
    let before = t.db.statements();
    let response = t
        .gql(
            "query($r: [_Any!]!) { _entities(representations: $r) { ... on User { id username email } } }",
            json!({ "r": representations }),
            None,
        )
        .await;
    assert_eq!(
        t.db.statements() - before,
        1,
        "one statement for the whole batch"
    );
    let entities = data(&response)["_entities"].as_array().expect("list");
    assert_eq!(entities.len(), 101);
    for (i, entity) in entities.iter().take(100).enumerate() {
        assert_eq!(entity["id"], json!(ids[i]));
        assert_eq!(entity["username"], json!(format!("user{i}")));
        assert_eq!(entity["email"], Value::Null);
    }
    assert_eq!(entities[100], Value::Null);
}

fn post(body: impl Into<Body>) -> Request<Body> {
    Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/graphql-response+json")
        .body(body.into())
        .expect("valid request")
}

/// Malformed, oversized and invalid requests: clear errors with the right status, and nothing changes.
async fn bad_requests_change_nothing(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    let register = r#"mutation { register(input: { username: "kate", email: "kate@example.com", password: "Secret123" }) { token } }"#;

    let malformed = send(&t.app, post(format!(r#"{{"query": "{register}"#))).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        malformed.body["errors"][0]["extensions"]["code"],
        json!("BAD_REQUEST")
    );

    let padding = "x".repeat(1024 * 1024 + 1);
    let oversized = json!({ "query": register, "extensions": { "padding": padding } }).to_string();
    let too_large = send(&t.app, post(oversized)).await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);

    let unparsable = send(
        &t.app,
        post(json!({ "query": "mutation { register(" }).to_string()),
    )
    .await;
    assert_eq!(unparsable.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        unparsable.body["errors"][0]["extensions"]["code"],
        json!("GRAPHQL_PARSE_FAILED")
    );
    assert!(
        unparsable.body.get("data").is_none(),
        "a request that never ran has no data entry: {:?}",
        unparsable.body
    );

    let no_query = send(&t.app, post(json!({ "qeury": register }).to_string())).await;
    assert_eq!(no_query.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        no_query.body["errors"][0]["extensions"]["code"],
        json!("BAD_REQUEST")
    );

    let any_type = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "*/*")
        .body(Body::from(json!({ "query": "{ __typename }" }).to_string()))
        .expect("valid request");
    let any_type = send(&t.app, any_type).await;
    assert!(
        any_type.content_type.starts_with("application/json"),
        "Accept: */* gets application/json, got {}",
        any_type.content_type
    );

    let unknown_field = json!({ "query": register.replace("{ token }", "{ token nope }") });
    let invalid = send(&t.app, post(unknown_field.to_string())).await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        invalid.body["errors"][0]["extensions"]["code"],
        json!("GRAPHQL_VALIDATION_FAILED")
    );

    let wrong_type = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(json!({ "query": register }).to_string()))
        .expect("valid request");
    assert_eq!(
        send(&t.app, wrong_type).await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );

    let get_mutation = Request::get(format!(
        "/graphql?query={}",
        "mutation%20%7B%20logout%20%7D"
    ))
    .body(Body::empty())
    .expect("valid request");
    assert_eq!(
        send(&t.app, get_mutation).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );

    let nested = format!("{{ {}me {{ id }}{} }}", "__schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { name ", "} } } } } } } } } } } } } } } }");
    let too_deep = send(&t.app, post(json!({ "query": nested }).to_string())).await;
    assert_eq!(
        too_deep.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        too_deep.body
    );

    assert!(
        !t.username_exists("kate").await,
        "no bad request registered anybody"
    );

    let get_query =
        Request::get("/graphql?query=%7B%20usernameExists(username%3A%20%22kate%22)%20%7D")
            .header(header::ACCEPT, "application/json")
            .body(Body::empty())
            .expect("valid request");
    let answer = send(&t.app, get_query).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.content_type.starts_with("application/json"));
    assert_eq!(answer.body["data"]["usernameExists"], json!(false));

    let health = send(
        &t.app,
        Request::get("/health").body(Body::empty()).expect("valid"),
    )
    .await;
    assert_eq!(health.status, StatusCode::OK);
}

/// The introspection endpoint the other subgraphs verify tokens with.
async fn introspection_endpoint(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    let (token, id) = t.register("lena").await;
    let ask = |authorization: Option<String>| {
        let mut request = Request::post("/auth/introspect");
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        send(&t.app, request.body(Body::empty()).expect("valid"))
    };
    let active = ask(Some(format!("Bearer {token}"))).await;
    assert_eq!(
        active.body,
        json!({ "active": true, "userId": id.parse::<i64>().expect("numeric id"), "isAdmin": false })
    );
    assert_eq!(
        ask(Some("Bearer tpr_forged".into())).await.body,
        json!({ "active": false })
    );
    assert_eq!(
        ask(Some("Basic abc".into())).await.body,
        json!({ "active": false })
    );
    assert_eq!(ask(None).await.body, json!({ "active": false }));
}

/// Migrations are safe to run twice; serving needs them applied.
async fn migrations_are_idempotent(test_db: TestDb) {
    let db = test_db.connect().await;
    assert!(db.check_migrated(&db::migrations()).await.is_err());
    db.migrate(&db::migrations()).await.expect("first run");
    db.migrate(&db::migrations()).await.expect("second run");
    db.check_migrated(&db::migrations())
        .await
        .expect("migrated");
}

test_on_both_databases!(
    token_checks_echo_the_request_id,
    admins_page_every_account,
    login_scenario,
    login_failures_are_indistinguishable,
    registration_rules,
    unique_values_conflict_in_any_case,
    email_and_admin_flag_are_private,
    names_are_private,
    credential_fields_run_at_most_once_per_operation,
    failed_sign_ins_are_throttled_per_username,
    profile_updates_change_only_given_fields,
    password_change_revokes_other_tokens,
    account_deletion,
    expired_tokens_are_refused,
    entity_batches_cost_one_statement,
    bad_requests_change_nothing,
    introspection_endpoint,
    migrations_are_idempotent,
);

/// `/ready` answers 503 once the database is gone; `/health` (liveness) does not follow it.
async fn readiness_follows_the_database(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    let probe = |path: &'static str| {
        send(
            &t.app,
            Request::get(path).body(Body::empty()).expect("valid"),
        )
    };
    assert_eq!(probe("/ready").await.status, StatusCode::OK);
    assert_eq!(probe("/health").await.status, StatusCode::OK);
    t.db.close().await;
    assert_eq!(
        probe("/ready").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(probe("/health").await.status, StatusCode::OK);
}

test_on_both_databases!(readiness_follows_the_database);

/// GET takes GraphQL-over-HTTP's parameter names: `operationName` picks among several operations.
async fn get_honours_operation_name(test_db: TestDb) {
    let t = TestApp::start(&test_db).await;
    let document = "query A { usernameExists(username: \"a\") } mutation B { logout }";
    let uri = format!(
        "/graphql?query={}&operationName=A",
        document
            .replace(' ', "%20")
            .replace('{', "%7B")
            .replace('}', "%7D")
            .replace('"', "%22")
            .replace(':', "%3A")
    );
    let answer = send(
        &t.app,
        Request::get(uri).body(Body::empty()).expect("valid"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body["data"]["usernameExists"], json!(false));
}

test_on_both_databases!(get_honours_operation_name);
