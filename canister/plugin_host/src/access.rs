//! Who may do what: admins, the install policy, plugin owners and per-plugin invoke policies.
//!
//! Pure functions over plain values: the endpoints pass in the caller and whether it controls the
//! canister, so every rule is tested natively.

use candid::Principal;
use plugin_host_api::{Denied, InstallPolicy, InvokePolicy, Right, Settings};

/// The caller of a message, as the endpoint saw it.
#[derive(Clone, Copy, Debug)]
pub struct Caller {
    /// The caller's principal.
    pub principal: Principal,
    /// Whether the caller is a controller of the canister (controllers are admins).
    pub is_controller: bool,
}

/// The access rules, as methods of the settings they read.
pub trait Rules {
    /// Whether `caller` is an admin (a controller or a listed admin).
    fn is_admin(&self, caller: &Caller) -> bool;
    /// Allows admins only.
    fn authorize_admin(&self, caller: &Caller) -> Result<(), Denied>;
    /// Allows callers the install policy admits; the anonymous principal never installs.
    fn authorize_install(&self, caller: &Caller) -> Result<(), Denied>;
    /// Allows the plugin's owner and admins.
    fn authorize_manage(&self, caller: &Caller, owner: &Principal) -> Result<(), Denied>;
    /// Allows callers the plugin's invoke policy admits; its owner and admins always may.
    fn authorize_invoke(
        &self,
        caller: &Caller,
        owner: &Principal,
        policy: &InvokePolicy,
    ) -> Result<(), Denied>;
}

impl Rules for Settings {
    /// Whether `caller` is an admin (a controller or a listed admin).
    fn is_admin(&self, caller: &Caller) -> bool {
        caller.is_controller || self.admins.contains(&caller.principal)
    }

    /// Allows admins only.
    fn authorize_admin(&self, caller: &Caller) -> Result<(), Denied> {
        check(self.is_admin(caller), caller, Right::Admin)
    }

    /// Allows callers the install policy admits; the anonymous principal never installs.
    fn authorize_install(&self, caller: &Caller) -> Result<(), Denied> {
        let anonymous = caller.principal == Principal::anonymous();
        let allowed = !anonymous
            && (self.is_admin(caller)
                || match &self.install_policy {
                    InstallPolicy::AdminsOnly => false,
                    InstallPolicy::AllowList(list) => list.contains(&caller.principal),
                    InstallPolicy::AnyAuthenticated => true,
                });
        check(allowed, caller, Right::Install)
    }

    /// Allows the plugin's owner and admins.
    fn authorize_manage(&self, caller: &Caller, owner: &Principal) -> Result<(), Denied> {
        let allowed = self.is_admin(caller) || caller.principal == *owner;
        check(allowed, caller, Right::ManagePlugin)
    }

    /// Allows callers the plugin's invoke policy admits; its owner and admins always may.
    fn authorize_invoke(
        &self,
        caller: &Caller,
        owner: &Principal,
        policy: &InvokePolicy,
    ) -> Result<(), Denied> {
        let allowed = match policy {
            InvokePolicy::Public => true,
            InvokePolicy::OwnerOnly => false,
            InvokePolicy::AllowList(list) => list.contains(&caller.principal),
        } || caller.principal == *owner
            || self.is_admin(caller);
        check(allowed, caller, Right::Invoke)
    }
}

fn check(allowed: bool, caller: &Caller, missing: Right) -> Result<(), Denied> {
    if allowed {
        Ok(())
    } else {
        Err(Denied {
            caller: caller.principal,
            missing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(n: u8) -> Principal {
        Principal::from_slice(&[n; 10])
    }

    fn user(n: u8) -> Caller {
        Caller {
            principal: principal(n),
            is_controller: false,
        }
    }

    fn settings(policy: InstallPolicy) -> Settings {
        Settings {
            admins: vec![principal(1)],
            install_policy: policy,
            ..Settings::default()
        }
    }

    #[test]
    fn install_follows_the_policy_and_never_admits_anonymous() {
        let anonymous = Caller {
            principal: Principal::anonymous(),
            is_controller: false,
        };
        let controller = Caller {
            principal: principal(9),
            is_controller: true,
        };
        let admins_only = settings(InstallPolicy::AdminsOnly);
        assert!(admins_only.authorize_install(&user(1)).is_ok());
        assert!(admins_only.authorize_install(&controller).is_ok());
        assert_eq!(
            admins_only.authorize_install(&user(2)),
            Err(Denied {
                caller: principal(2),
                missing: Right::Install
            })
        );
        let listed = settings(InstallPolicy::AllowList(vec![principal(2)]));
        assert!(listed.authorize_install(&user(2)).is_ok());
        assert!(listed.authorize_install(&user(3)).is_err());
        let open = settings(InstallPolicy::AnyAuthenticated);
        assert!(open.authorize_install(&user(3)).is_ok());
        assert!(open.authorize_install(&anonymous).is_err());
    }

    #[test]
    fn owners_and_admins_manage_plugins() {
        let s = settings(InstallPolicy::AnyAuthenticated);
        let owner = principal(5);
        assert!(s.authorize_manage(&user(5), &owner).is_ok());
        assert!(s.authorize_manage(&user(1), &owner).is_ok());
        assert_eq!(
            s.authorize_manage(&user(6), &owner).map_err(|d| d.missing),
            Err(Right::ManagePlugin)
        );
    }

    #[test]
    fn invoke_follows_the_plugin_policy() {
        let s = settings(InstallPolicy::AdminsOnly);
        let owner = principal(5);
        let dao = principal(7);
        assert!(
            s.authorize_invoke(&user(6), &owner, &InvokePolicy::Public)
                .is_ok()
        );
        assert!(
            s.authorize_invoke(&user(6), &owner, &InvokePolicy::OwnerOnly)
                .is_err()
        );
        assert!(
            s.authorize_invoke(&user(5), &owner, &InvokePolicy::OwnerOnly)
                .is_ok()
        );
        assert!(
            s.authorize_invoke(&user(1), &owner, &InvokePolicy::OwnerOnly)
                .is_ok()
        );
        let allow = InvokePolicy::AllowList(vec![dao]);
        assert!(s.authorize_invoke(&user(7), &owner, &allow).is_ok());
        assert_eq!(
            s.authorize_invoke(&user(6), &owner, &allow)
                .map_err(|d| d.missing),
            Err(Right::Invoke)
        );
    }

    #[test]
    fn only_admins_administer() {
        let s = settings(InstallPolicy::AnyAuthenticated);
        assert!(s.authorize_admin(&user(1)).is_ok());
        assert!(s.authorize_admin(&user(2)).is_err());
    }
}
