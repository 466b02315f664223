// Account screens (USER-1, 4, 5, 6, 10): sign-up, the sign-up and e-mail links, forgotten
// password, first-login password change, and the account settings page.
//
// Routes: #/signup, #/signup/confirm?token=, #/password/forgot, #/password/reset?email=,
// #/email/confirm?token= (without a session); #/account and #/password/initial (with one).

import { apiJson, forgetSession } from "./api.js";
import { mobileDevicesSection } from "./app_devices.js";
import { el, field, form, hashParams } from "./forms.js";

const PASSWORD_HELP =
  "8 to 32 characters with upper case, lower case, a digit and one of @ $ ! % * ? & /; " +
  "not containing your e-mail address and not a common word.";

function help(text) {
  return el("p", { class: "help", text });
}

function loginLink() {
  return el("p", {}, el("a", { href: "#/login", text: "Return to login screen" }));
}

function newPasswordFields() {
  const [wrap, input] = field("New password", { type: "password", autocomplete: "new-password" });
  const [wrap2, confirm] = field("Confirm the password", {
    type: "password",
    autocomplete: "new-password",
  });
  const check = () => {
    if (input.value !== confirm.value) throw new Error("The two passwords do not match.");
    return input.value;
  };
  return { nodes: [wrap, wrap2, help(PASSWORD_HELP)], check };
}

export function signupPage() {
  const [email, emailIn] = field("E-mail address", { type: "email", autocomplete: "email" });
  const [name, nameIn] = field("Name", { maxlength: "32", autocomplete: "name" });
  const pw = newPasswordFields();
  const eulaIn = el("input", { type: "checkbox", id: "accept-eula" });
  const eula = el(
    "div",
    { class: "field check" },
    eulaIn,
    el("label", { for: "accept-eula", text: "I accept the licence agreement" }),
  );
  return [
    form({
      id: "signup-form",
      title: "New register",
      children: [email, name, ...pw.nodes, eula],
      submit: "Register",
      onSubmit: async () => {
        const password = pw.check();
        await apiJson("POST", "/api/v1/auth/signup", {
          email: emailIn.value.trim(),
          name: nameIn.value,
          password,
          accept_eula: eulaIn.checked,
        });
        return "We sent you an e-mail. Open the link in it within 24 hours to finish.";
      },
    }),
    loginLink(),
  ];
}

export function signupConfirmPage() {
  const token = hashParams().get("token") ?? "";
  return [
    form({
      id: "signup-confirm-form",
      title: "Activate your account",
      children: [help("Confirm your e-mail address to activate the account.")],
      submit: "Activate",
      onSubmit: async () => {
        await apiJson("POST", "/api/v1/auth/signup/confirm", { token });
        return "Your account is active. You can log in now.";
      },
    }),
    loginLink(),
  ];
}

export function emailConfirmPage() {
  const token = hashParams().get("token") ?? "";
  return [
    form({
      id: "email-confirm-form",
      title: "Confirm the new e-mail address",
      children: [help("After the change you are logged out everywhere.")],
      submit: "Confirm",
      onSubmit: async () => {
        await apiJson("POST", "/api/v1/auth/email/confirm", { token });
        forgetSession();
        return "The e-mail address was changed. Log in with the new address.";
      },
    }),
    loginLink(),
  ];
}

export function forgotPage() {
  const [email, emailIn] = field("E-mail address", { type: "email", autocomplete: "email" });
  return [
    form({
      id: "forgot-form",
      title: "Initialize password",
      children: [email],
      submit: "Send",
      onSubmit: async () => {
        const address = emailIn.value.trim();
        await apiJson("POST", "/api/v1/auth/password/forgot", { email: address });
        location.hash = `#/password/reset?email=${encodeURIComponent(address)}`;
        return "";
      },
    }),
    loginLink(),
  ];
}

export function resetPage() {
  const [email, emailIn] = field("E-mail address", { type: "email", autocomplete: "email" });
  emailIn.value = hashParams().get("email") ?? "";
  const pw = newPasswordFields();
  const [code, codeIn] = field("Verification code", { inputmode: "numeric", autocomplete: "one-time-code" });
  return [
    form({
      id: "reset-form",
      title: "Change password",
      children: [
        help("The e-mail with the verification code is on its way (check the spam folder)."),
        email,
        ...pw.nodes,
        code,
      ],
      submit: "Change",
      onSubmit: async () => {
        const password = pw.check();
        await apiJson("POST", "/api/v1/auth/password/reset", {
          email: emailIn.value.trim(),
          code: codeIn.value.trim(),
          password,
        });
        return "The login password was reset. Return to the login screen and log in.";
      },
    }),
    loginLink(),
  ];
}

/** USER-6: the invited user's first login. ``done`` is called once the password changed. */
export function initialPasswordPage(done) {
  const [current, currentIn] = field("Password (from the invitation e-mail)", {
    type: "password",
    autocomplete: "current-password",
  });
  const pw = newPasswordFields();
  return [
    form({
      id: "initial-password-form",
      title: "Set your own password",
      context: "changePassword",
      children: [current, ...pw.nodes],
      submit: "Change",
      onSubmit: async () => {
        const password = pw.check();
        await apiJson("POST", "/api/v1/auth/password/change", {
          password: currentIn.value,
          new_password: password,
        });
        done();
        return "";
      },
    }),
  ];
}

/** #/account: name, password, e-mail address, deactivation. */
export function accountPage(account, onChanged, onGone) {
  const [name, nameIn] = field("Name", { maxlength: "32", value: account.name ?? "" });
  const [current, currentIn] = field("Current password", {
    type: "password",
    autocomplete: "current-password",
  });
  const pw = newPasswordFields();
  const [email, emailIn] = field("New e-mail address", { type: "email" });
  const [emailPw, emailPwIn] = field("Password", { type: "password", autocomplete: "current-password" });
  const [killPw, killPwIn] = field("Password", { type: "password", autocomplete: "current-password" });
  const pages = [
    el("h1", { text: "Account settings" }),
    form({
      id: "name-form",
      title: "Name",
      children: [name],
      submit: "Save",
      onSubmit: async () => {
        const data = await apiJson("PATCH", "/api/v1/me", { name: nameIn.value });
        onChanged(data.account);
        return "Saved.";
      },
    }),
    form({
      id: "password-form",
      title: "Change password",
      context: "changePassword",
      children: [current, ...pw.nodes],
      submit: "Change",
      onSubmit: async () => {
        const password = pw.check();
        await apiJson("POST", "/api/v1/auth/password/change", {
          password: currentIn.value,
          new_password: password,
        });
        return "The password was changed. Other browsers must log in again.";
      },
    }),
    form({
      id: "email-form",
      title: "Change e-mail address",
      children: [email, emailPw, help("A confirmation link goes to the new address (24 hours).")],
      submit: "Send link",
      onSubmit: async () => {
        await apiJson("POST", "/api/v1/auth/email/change", {
          email: emailIn.value.trim(),
          password: emailPwIn.value,
        });
        return "Open the link sent to the new address to finish the change.";
      },
    }),
  ];
  pages.push(mobileDevicesSection()); // USER-9: apps linked to this viewer
  if (account.role === "subscriber") {
    pages.push(
      form({
        id: "deactivate-form",
        title: "Cancel the service",
        children: [
          help("All devices, shared users and data are deleted. This cannot be undone."),
          killPw,
        ],
        submit: "Delete my account",
        onSubmit: async () => {
          await apiJson("POST", "/api/v1/me/deactivate", { password: killPwIn.value });
          onGone();
          return "";
        },
      }),
    );
  }
  return pages;
}
