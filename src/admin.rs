//! `longin admin`: tasks an operator runs against the store directly, such as creating
//! the first admin.

use std::io::{BufRead, IsTerminal};

use anyhow::{Context as _, bail};

use longin_api::auth::password::PasswordHasher;
use longin_api::auth::registration::{self, RegisterRequest};
use longin_store::users::{NewUser, Role, UserRecord};
use longin_store::{Store, StoreError};

use crate::cli::{CreateUserArgs, RoleArg};

/// Reads the new user's password: from stdin when it is piped, else prompted twice.
///
/// # Errors
/// Stdin cannot be read, or the two typed passwords differ.
pub fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let first = rpassword::prompt_password("Password: ").context("reading the password")?;
        let second =
            rpassword::prompt_password("Repeat password: ").context("reading the password")?;
        if first != second {
            bail!("the passwords do not match");
        }
        Ok(first)
    } else {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

/// Creates a user with the same rules as registration through the API.
///
/// # Errors
/// A field breaks the rules (each named), the username or email is taken, or the
/// store fails.
pub async fn create_user(
    store: &Store,
    args: &CreateUserArgs,
    password: String,
) -> anyhow::Result<UserRecord> {
    let form = RegisterRequest {
        username: Some(args.username.clone()),
        email: Some(args.email.clone()),
        confirm_password: Some(password.clone()),
        password: Some(password),
    };
    let valid = match registration::validate(form) {
        Ok(valid) => valid,
        Err(errors) => {
            let problems: Vec<String> = errors
                .iter()
                .map(|(field, why)| format!("{field} {why}"))
                .collect();
            bail!("invalid user: {}", problems.join("; "));
        }
    };
    let hash = PasswordHasher::new(1)
        .hash(&valid.password)
        .await
        .context("hashing the password")?;
    let role = match args.role {
        RoleArg::Admin => Role::Admin,
        RoleArg::User => Role::User,
    };
    match store
        .create_user(&NewUser {
            username: &valid.username,
            email: &valid.email,
            password_hash: &hash,
            role,
        })
        .await
    {
        Ok(user) => Ok(user),
        Err(StoreError::Conflict { constraint }) if constraint == "users_username_key" => {
            bail!("username {} is already taken", valid.username)
        }
        Err(StoreError::Conflict { constraint }) if constraint == "users_email_key" => {
            bail!("email {} is already registered", valid.email)
        }
        Err(err) => Err(err).context("creating the user"),
    }
}
