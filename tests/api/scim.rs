//! SCIM 2.0 provisioning (RFC 7643, RFC 7644) the way identity providers call it: create,
//! look up by `userName eq`, update by PATCH (Azure AD's and Okta's shapes), deactivate with
//! `active: false`, reactivate, delete; groups (roles) with members added and removed,
//! renamed and deleted; and the failures, each a SCIM error with its status and `scimType`.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// The credential SCIM calls carry, as an identity provider holds it: an API key of a new
/// organization, holding the admin role (scim.provision, users.manage, roles.manage).
async fn scim_credential(app: &TestApp) -> String {
    let org = app.org("owner@example.com").await;
    app.api_key(&org.owner_token, "Identity provider", &["admin"]).await.1
}

struct Reply {
    status: StatusCode,
    etag: Option<String>,
    body: Value,
}

/// A SCIM request with `application/scim+json`, and `If-Match` when given.
async fn scim(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
    if_match: Option<&str>,
) -> Reply {
    let mut req = app.client.request(method, app.url(&format!("/scim/v2{path}")));
    if let Some(body) = body {
        req = req
            .header("content-type", "application/scim+json")
            .body(body.to_string());
    }
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(tag) = if_match {
        req = req.header("if-match", tag);
    }
    let res = req.send_checked().await.expect("request sent");
    let status = res.status();
    let etag = res
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = res.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).expect("json")
    };
    Reply { status, etag, body }
}

async fn get(app: &TestApp, path: &str, token: &str) -> Reply {
    scim(app, Method::GET, path, None, Some(token), None).await
}

async fn post(app: &TestApp, path: &str, body: Value, token: &str) -> Reply {
    scim(app, Method::POST, path, Some(body), Some(token), None).await
}

async fn patch(app: &TestApp, path: &str, ops: Value, token: &str) -> Reply {
    let body = json!({ "schemas": [PATCH], "Operations": ops });
    scim(app, Method::PATCH, path, Some(body), Some(token), None).await
}

async fn delete(app: &TestApp, path: &str, token: &str) -> Reply {
    scim(app, Method::DELETE, path, None, Some(token), None).await
}

fn assert_scim_error(reply: &Reply, status: u16, scim_type: Option<&str>) {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.body);
    assert_eq!(reply.body["status"], status.to_string(), "{}", reply.body);
    assert_eq!(reply.body["scimType"].as_str(), scim_type, "{}", reply.body);
}

fn new_user(user_name: &str, email: &str) -> Value {
    json!({
        "schemas": [USER], "userName": user_name, "externalId": format!("ext-{user_name}"),
        "name": { "givenName": "Grace", "familyName": "Hopper" },
        "emails": [{ "value": email, "type": "work", "primary": true }], "active": true
    })
}

async fn create_user(app: &TestApp, token: &str, user_name: &str, email: &str) -> String {
    let created = post(app, "/Users", new_user(user_name, email), token).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    created.body["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_user_is_created_found_patched_deactivated_reactivated_and_deleted() {
    on_each_backend(|app| async move {
        let token = scim_credential(&app).await;
        let created = post(
            &app,
            "/Users",
            new_user("Grace.Hopper@Corp.Example", "grace@example.com"),
            &token,
        )
        .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let id = created.body["id"].as_str().unwrap().to_string();
        assert_eq!(created.body["userName"], "Grace.Hopper@Corp.Example");
        assert_eq!(created.body["emails"], json!([{ "value": "grace@example.com" }]));
        assert_eq!(created.body["active"], true);
        assert_eq!(
            created.body["groups"][0]["display"], "Standard",
            "new users hold the standard role"
        );
        assert_eq!(created.etag.as_deref(), created.body["meta"]["version"].as_str());
        assert!(created.etag.as_deref().unwrap().starts_with("W/\""));

        // Identity providers look users up by userName, regardless of case.
        let found = get(
            &app,
            "/Users?filter=userName%20eq%20%22grace.hopper%40corp.example%22",
            &token,
        )
        .await;
        assert_eq!(found.status, StatusCode::OK, "{}", found.body);
        assert_eq!(found.body["totalResults"], 1);
        assert_eq!(found.body["Resources"][0]["id"], id.as_str());
        let by_external = get(
            &app,
            "/Users?filter=externalId%20eq%20%22ext-Grace.Hopper%40Corp.Example%22",
            &token,
        )
        .await;
        assert_eq!(by_external.body["totalResults"], 1, "{}", by_external.body);

        // Azure AD: capitalized ops, paths, "False" as a string.
        let azure = patch(
            &app,
            &format!("/Users/{id}"),
            json!([
                { "op": "Replace", "path": "name.givenName", "value": "Amazing Grace" },
                { "op": "Replace", "path": "emails[type eq \"work\"].value", "value": "amazing@example.com" },
                { "op": "Add", "path": "externalId", "value": "azure-1" }
            ]),
            &token,
        )
        .await;
        assert_eq!(azure.status, StatusCode::OK, "{}", azure.body);
        assert_eq!(azure.body["name"]["givenName"], "Amazing Grace");
        assert_eq!(azure.body["emails"][0]["value"], "amazing@example.com");
        assert_eq!(azure.body["externalId"], "azure-1");
        let (_, rest) = app.user(&token, &id).await;
        assert_eq!(
            rest["user"]["email"], "amazing@example.com",
            "the REST view sees the same user: {rest}"
        );

        let deactivated = patch(
            &app,
            &format!("/Users/{id}"),
            json!([{ "op": "Replace", "path": "active", "value": "False" }]),
            &token,
        )
        .await;
        assert_eq!(deactivated.status, StatusCode::OK, "{}", deactivated.body);
        assert_eq!(deactivated.body["active"], false);
        let (_, rest) = app.user(&token, &id).await;
        assert_eq!(rest["membership"]["status"], "deactivated", "{rest}");
        let again = patch(
            &app,
            &format!("/Users/{id}"),
            json!([{ "op": "replace", "value": { "active": false } }]),
            &token,
        )
        .await;
        assert_eq!(
            again.status,
            StatusCode::OK,
            "deactivating twice is not an error: {}",
            again.body
        );

        // Okta: replace without a path.
        let okta = patch(
            &app,
            &format!("/Users/{id}"),
            json!([{ "op": "replace", "value": { "active": true, "name": { "familyName": "Murray" } } }]),
            &token,
        )
        .await;
        assert_eq!(okta.status, StatusCode::OK, "{}", okta.body);
        assert_eq!(okta.body["active"], true);
        assert_eq!(
            okta.body["name"],
            json!({ "givenName": "Amazing Grace", "familyName": "Murray" })
        );
        assert!(app
            .audit_actions(&id)
            .await
            .contains(&"membership.reactivated".to_string()));

        let deleted = delete(&app, &format!("/Users/{id}"), &token).await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
        assert_scim_error(&get(&app, &format!("/Users/{id}"), &token).await, 404, None);
        let gone = get(
            &app,
            "/Users?filter=userName%20eq%20%22grace.hopper%40corp.example%22",
            &token,
        )
        .await;
        assert_eq!(gone.body["totalResults"], 0);
    })
    .await;
}

#[tokio::test]
async fn active_false_refuses_login_at_once_and_active_true_lets_the_member_back() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let token = org.owner_token.clone();
        let (id, member_token) = app.member(&token, "sam@example.com", &["standard"], &org.root).await;
        // A member made outside SCIM answers to their email as userName.
        let found = get(&app, "/Users?filter=userName%20eq%20%22SAM%40example.com%22", &token).await;
        assert_eq!(found.body["Resources"][0]["id"], id.as_str(), "{}", found.body);

        let off = patch(
            &app,
            &format!("/Users/{id}"),
            json!([{ "op": "replace", "path": "active", "value": false }]),
            &token,
        )
        .await;
        assert_eq!(off.status, StatusCode::OK, "{}", off.body);
        let (status, _) = app.get("/v1/me", Some(&member_token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "its tokens stop at once");
        let (status, body) = app.log_in("sam@example.com", MEMBER_PASSWORD).await;
        assert_problem(status, &body, 403, "forbidden");
        let inactive = get(&app, "/Users?filter=active%20eq%20false", &token).await;
        assert_eq!(inactive.body["totalResults"], 1, "{}", inactive.body);

        let on = patch(
            &app,
            &format!("/Users/{id}"),
            json!([{ "op": "replace", "path": "active", "value": true }]),
            &token,
        )
        .await;
        assert_eq!(on.status, StatusCode::OK, "{}", on.body);
        let (status, _) = app.log_in("sam@example.com", MEMBER_PASSWORD).await;
        assert_eq!(status, StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn a_group_is_created_given_and_relieved_of_members_renamed_and_deleted() {
    on_each_backend(|app| async move {
        let token = scim_credential(&app).await;
        let ada = create_user(&app, &token, "ada", "ada@example.com").await;
        let bob = create_user(&app, &token, "bob", "bob@example.com").await;

        let created = post(
            &app,
            "/Groups",
            json!({ "schemas": [GROUP], "displayName": "Sales", "members": [{ "value": ada }] }),
            &token,
        )
        .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let gid = created.body["id"].as_str().unwrap().to_string();
        assert_eq!(created.body["members"][0]["value"], ada.as_str());
        let user = get(&app, &format!("/Users/{ada}"), &token).await;
        let groups: Vec<&str> = user.body["groups"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|g| g["display"].as_str())
            .collect();
        assert_eq!(groups, vec!["Sales", "Standard"], "{}", user.body);

        let added = patch(
            &app,
            &format!("/Groups/{gid}"),
            json!([{ "op": "add", "path": "members", "value": [{ "value": bob }] }]),
            &token,
        )
        .await;
        assert_eq!(added.status, StatusCode::OK, "{}", added.body);
        assert_eq!(added.body["members"].as_array().unwrap().len(), 2);

        let removed = patch(
            &app,
            &format!("/Groups/{gid}"),
            json!([{ "op": "remove", "path": format!("members[value eq \"{ada}\"]") }]),
            &token,
        )
        .await;
        assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
        assert_eq!(
            removed.body["members"],
            json!([{ "value": bob, "$ref": removed.body["members"][0]["$ref"] }])
        );
        assert!(app
            .audit_actions(&ada)
            .await
            .contains(&"membership.roles_changed".to_string()));

        let renamed = patch(
            &app,
            &format!("/Groups/{gid}"),
            json!([{ "op": "Replace", "path": "displayName", "value": "Field sales" }]),
            &token,
        )
        .await;
        assert_eq!(renamed.body["displayName"], "Field sales", "{}", renamed.body);
        let found = get(
            &app,
            "/Groups?filter=displayName%20eq%20%22field%20SALES%22&excludedAttributes=members",
            &token,
        )
        .await;
        assert_eq!(found.body["totalResults"], 1, "{}", found.body);
        assert!(found.body["Resources"][0].get("members").is_none());

        let deleted = delete(&app, &format!("/Groups/{gid}"), &token).await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
        assert_scim_error(&get(&app, &format!("/Groups/{gid}"), &token).await, 404, None);
        let bob_now = get(&app, &format!("/Users/{bob}"), &token).await;
        assert_eq!(bob_now.body["groups"].as_array().unwrap().len(), 1, "{}", bob_now.body);
    })
    .await;
}

#[tokio::test]
async fn built_in_groups_cannot_be_renamed_or_deleted_and_a_member_keeps_a_role() {
    on_each_backend(|app| async move {
        let token = scim_credential(&app).await;
        let ada = create_user(&app, &token, "ada", "ada@example.com").await;
        let groups = get(&app, "/Groups?filter=displayName%20eq%20%22standard%22", &token).await;
        let standard = groups.body["Resources"][0]["id"].as_str().unwrap().to_string();
        let rename = patch(
            &app,
            &format!("/Groups/{standard}"),
            json!([{ "op": "replace", "path": "displayName", "value": "Plain" }]),
            &token,
        )
        .await;
        assert_scim_error(&rename, 400, Some("mutability"));
        assert_scim_error(
            &delete(&app, &format!("/Groups/{standard}"), &token).await,
            400,
            Some("mutability"),
        );
        let last = patch(
            &app,
            &format!("/Groups/{standard}"),
            json!([{ "op": "remove", "path": format!("members[value eq \"{ada}\"]") }]),
            &token,
        )
        .await;
        assert_scim_error(&last, 400, Some("invalidValue"));
        let user = get(&app, &format!("/Users/{ada}"), &token).await;
        assert_eq!(user.body["groups"][0]["value"], standard.as_str(), "nothing changed");
    })
    .await;
}

#[tokio::test]
async fn lists_page_by_start_index_and_count_and_filter_on_last_modified() {
    on_each_backend(|app| async move {
        let token = scim_credential(&app).await;
        let mut ids = Vec::new();
        for n in 0..3 {
            ids.push(create_user(&app, &token, &format!("u{n}"), &format!("u{n}@example.com")).await);
        }
        let page = get(&app, "/Users?startIndex=2&count=2", &token).await;
        assert_eq!(page.body["totalResults"], 4, "the owner and three: {}", page.body);
        assert_eq!(page.body["startIndex"], 2);
        let got: Vec<&str> = page.body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["id"].as_str())
            .collect();
        assert_eq!(got, vec![ids[0].as_str(), ids[1].as_str()], "sorted by id");
        let totals = get(&app, "/Users?count=0&startIndex=0", &token).await;
        assert_eq!(totals.body["totalResults"], 4);
        assert_eq!(totals.body["Resources"], json!([]));

        let since = page.body["Resources"][1]["meta"]["lastModified"]
            .as_str()
            .unwrap()
            .to_string();
        app.clock.advance(chrono::Duration::seconds(5));
        patch(
            &app,
            &format!("/Users/{}", ids[0]),
            json!([{ "op": "replace", "path": "name.familyName", "value": "Changed" }]),
            &token,
        )
        .await;
        let filter = format!(
            "/Users?filter=meta.lastModified%20gt%20%22{}%22",
            since.replace('+', "%2B")
        );
        let changed = get(&app, &filter, &token).await;
        let got: Vec<&str> = changed.body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["id"].as_str())
            .collect();
        assert_eq!(
            got,
            vec![ids[0].as_str(), ids[2].as_str()],
            "changed or created since: {}",
            changed.body
        );
        let filter = format!(
            "/Users?filter=meta.lastModified%20le%20%22{}%22%20and%20userName%20eq%20%22U1%22",
            since.replace('+', "%2B")
        );
        let unchanged = get(&app, &filter, &token).await;
        assert_eq!(unchanged.body["totalResults"], 1, "{}", unchanged.body);
        assert_eq!(
            unchanged.body["Resources"][0]["id"],
            ids[1].as_str(),
            "{}",
            unchanged.body
        );
        let projected = get(&app, &format!("/Users/{}?attributes=userName", ids[0]), &token).await;
        assert_eq!(
            projected.body.as_object().unwrap().keys().collect::<Vec<_>>(),
            vec!["id", "schemas", "userName"]
        );
    })
    .await;
}

#[tokio::test]
async fn failures_are_scim_errors_with_their_scim_type() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let token = org.owner_token.clone();
        let id = create_user(&app, &token, "ada", "ada@example.com").await;
        let path = format!("/Users/{id}");

        assert_scim_error(
            &get(&app, "/Users?filter=userName%20sw%20%22a%22", &token).await,
            400,
            Some("invalidFilter"),
        );
        assert_scim_error(
            &get(&app, "/Users?filter=userName%20eq", &token).await,
            400,
            Some("invalidFilter"),
        );
        let bad_path = patch(
            &app,
            &path,
            json!([{ "op": "replace", "path": "nickName", "value": "x" }]),
            &token,
        )
        .await;
        assert_scim_error(&bad_path, 400, Some("invalidPath"));
        let read_only = patch(
            &app,
            &path,
            json!([{ "op": "replace", "path": "groups", "value": [] }]),
            &token,
        )
        .await;
        assert_scim_error(&read_only, 400, Some("mutability"));
        let duplicate = post(&app, "/Users", new_user("ADA", "other@example.com"), &token).await;
        assert_scim_error(&duplicate, 409, Some("uniqueness"));
        let taken_email = post(&app, "/Users", new_user("someone", "ada@example.com"), &token).await;
        assert_scim_error(&taken_email, 409, Some("uniqueness"));
        let malformed = scim(&app, Method::POST, "/Users", None, Some(&token), None).await;
        assert_scim_error(&malformed, 400, Some("invalidSyntax"));
        let not_json = app
            .client
            .post(app.url("/scim/v2/Users"))
            .bearer_auth(&token)
            .header("content-type", "application/scim+json")
            .body("{\"userName\":")
            .send_checked()
            .await
            .unwrap();
        assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
        assert_scim_error(&get(&app, "/Users", "not-a-token").await, 401, None);
        assert_scim_error(
            &get(&app, "/Users/usr_00000000000000000000000000", &token).await,
            404,
            None,
        );
        assert_scim_error(&get(&app, "/Nothing", &token).await, 404, None);
        let wrong_method = scim(&app, Method::DELETE, "/Users", None, Some(&token), None).await;
        assert_scim_error(&wrong_method, 405, None);

        // If-Match with a version that is no longer current changes nothing.
        let current = get(&app, &path, &token).await.etag.unwrap();
        let body = json!({ "schemas": [PATCH], "Operations": [{ "op": "replace", "path": "active", "value": false }] });
        let ok = scim(
            &app,
            Method::PATCH,
            &path,
            Some(body.clone()),
            Some(&token),
            Some(&current),
        )
        .await;
        assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
        let stale = scim(&app, Method::PATCH, &path, Some(body), Some(&token), Some(&current)).await;
        assert_scim_error(&stale, 412, None);
        let stale_delete = scim(&app, Method::DELETE, &path, None, Some(&token), Some(&current)).await;
        assert_scim_error(&stale_delete, 412, None);
        assert_eq!(get(&app, &path, &token).await.status, StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn another_organization_and_a_member_without_scim_provision_get_nothing() {
    on_each_backend(|app| async move {
        let org = app.org("owner@example.com").await;
        let id = create_user(&app, &org.owner_token, "ada", "ada@example.com").await;
        let other = app.org("rival@example.com").await;
        assert_scim_error(&get(&app, &format!("/Users/{id}"), &other.owner_token).await, 404, None);
        let patched = patch(
            &app,
            &format!("/Users/{id}"),
            json!([{ "op": "replace", "path": "active", "value": false }]),
            &other.owner_token,
        )
        .await;
        assert_scim_error(&patched, 404, None);
        assert_scim_error(
            &delete(&app, &format!("/Users/{id}"), &other.owner_token).await,
            404,
            None,
        );
        let listed = get(&app, "/Users", &other.owner_token).await;
        assert_eq!(listed.body["totalResults"], 1, "only the rival owner: {}", listed.body);

        let (_, standard) = app
            .member(&org.owner_token, "sam@example.com", &["standard"], &org.root)
            .await;
        assert_scim_error(&get(&app, "/Users", &standard).await, 403, None);
        let created = post(
            &app,
            "/Groups",
            json!({ "schemas": [GROUP], "displayName": "Mine" }),
            &standard,
        )
        .await;
        assert_scim_error(&created, 403, None);
        assert_eq!(
            get(&app, &format!("/Users/{id}"), &org.owner_token).await.body["active"],
            true
        );
    })
    .await;
}

#[tokio::test]
async fn discovery_describes_what_is_supported_without_a_credential() {
    on_each_backend(|app| async move {
        let config = scim(&app, Method::GET, "/ServiceProviderConfig", None, None, None).await;
        assert_eq!(config.status, StatusCode::OK, "{}", config.body);
        assert_eq!(config.body["patch"]["supported"], true);
        assert_eq!(config.body["bulk"]["supported"], false);
        assert_eq!(config.body["filter"]["maxResults"], 200);
        assert_eq!(config.body["etag"]["supported"], true);
        let types = scim(&app, Method::GET, "/ResourceTypes", None, None, None).await;
        assert_eq!(types.body["totalResults"], 2);
        let user = scim(&app, Method::GET, &format!("/Schemas/{USER}"), None, None, None).await;
        let names: Vec<&str> = user.body["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["name"].as_str())
            .collect();
        assert!(names.contains(&"userName") && names.contains(&"active"), "{names:?}");
        let missing = scim(&app, Method::GET, "/Schemas/urn:nothing", None, None, None).await;
        assert_scim_error(&missing, 404, None);
        let wrong = scim(
            &app,
            Method::POST,
            "/ServiceProviderConfig",
            Some(json!({})),
            None,
            None,
        )
        .await;
        assert_scim_error(&wrong, 405, None);
    })
    .await;
}
