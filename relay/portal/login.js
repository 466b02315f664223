// Login view: email + password → POST /api/v1/auth/login (USER-3).

import { ApiError, login } from "./api.js";

export class LoginView {
  #section = document.getElementById("login-view");
  #form = document.getElementById("login-form");
  #email = document.getElementById("email");
  #password = document.getElementById("password");
  #submit = document.getElementById("login-submit");
  #error = document.getElementById("login-error");
  #onLoggedIn;

  /** @param {(account: object) => void} onLoggedIn called with the account after a login */
  constructor(onLoggedIn) {
    this.#onLoggedIn = onLoggedIn;
    this.#form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.#submitForm();
    });
  }

  /** Show the form, with a message (session ended, say) when given. */
  show(message = "") {
    this.#section.hidden = false;
    this.#showError(message);
    this.#submit.disabled = false;
    (this.#email.value ? this.#password : this.#email).focus();
  }

  hide() {
    this.#section.hidden = true;
  }

  #showError(text) {
    this.#error.textContent = text;
    this.#error.hidden = !text;
  }

  async #submitForm() {
    const email = this.#email.value.trim();
    const password = this.#password.value;
    if (!email || !password) {
      this.#showError("Enter your email address and password.");
      return;
    }
    this.#submit.disabled = true;
    this.#showError("");
    try {
      const account = await login(email, password);
      this.#password.value = "";
      this.#onLoggedIn(account);
    } catch (err) {
      this.#showError(err instanceof ApiError ? err.toString() : String(err));
      this.#password.select();
    } finally {
      this.#submit.disabled = false;
    }
  }
}
