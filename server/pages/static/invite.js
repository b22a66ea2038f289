// Progressive enhancement of the invitation page. The page works without this script (plain
// form posts, checked again by the server); with it, the password policy is checked as the
// invitee types, the accept button waits for the Terms of Service box, and forms are not sent
// twice.
(function () {
  'use strict';

  // Mirrors internal/password.Check; the server has the last word.
  var rules = {
    length: function (v) { var n = Array.from(v).length; return n >= 10 && n <= 128; },
    upper: function (v) { return /\p{Lu}/u.test(v); },
    lower: function (v) { return /\p{Ll}/u.test(v); },
    digit: function (v) { return /[\p{Nd}\p{P}\p{S}]/u.test(v); }
  };
  var ruleText = {
    length: 'at least 10 characters',
    upper: 'an upper-case letter',
    lower: 'a lower-case letter',
    digit: 'a digit or a symbol'
  };
  var termsMessage = 'Tick the box to accept the Terms of Service. You cannot join without accepting them.';
  var mismatchMessage = 'The two passwords differ. Type the same password twice.';

  function policyMessage(value) {
    if (Array.from(value).length > 128) {
      return 'Your password must have at most 128 characters.';
    }
    var missing = Object.keys(rules).filter(function (k) { return !rules[k](value); })
      .map(function (k) { return ruleText[k]; });
    if (missing.length === 0) {
      return '';
    }
    var list = missing.length === 1 ? missing[0]
      : missing.slice(0, -1).join(', ') + ' and ' + missing[missing.length - 1];
    return 'Your password needs ' + list + '.';
  }

  function setError(field, message) {
    var box = document.getElementById(field.id + '-error');
    if (box) {
      box.textContent = message;
      box.hidden = !message;
    }
    if (message) {
      field.setAttribute('aria-invalid', 'true');
    } else {
      field.removeAttribute('aria-invalid');
    }
    var wrap = field.closest('.field');
    if (wrap) {
      wrap.classList.toggle('has-error', Boolean(message));
    }
  }

  // A "Show" button that reveals what was typed, for people who cannot see the dots well.
  function addReveal(input) {
    var wrap = document.createElement('div');
    wrap.className = 'input-wrap';
    input.parentNode.insertBefore(wrap, input);
    wrap.appendChild(input);
    var button = document.createElement('button');
    button.type = 'button';
    button.className = 'reveal';
    // The visible word with what it applies to, for screen readers: "Show password".
    var word = document.createElement('span');
    var what = document.createElement('span');
    what.className = 'visually-hidden';
    what.textContent = ' password';
    button.append(word, what);
    word.textContent = 'Show';
    button.addEventListener('click', function () {
      var show = input.type === 'password';
      input.type = show ? 'text' : 'password';
      word.textContent = show ? 'Hide' : 'Show';
    });
    wrap.appendChild(button);
  }

  // Any form: once sent, its buttons wait, so a double click cannot send it twice.
  function guardResubmit(form, busyLabel) {
    form.addEventListener('submit', function (event) {
      if (event.defaultPrevented) {
        return;
      }
      form.setAttribute('aria-busy', 'true');
      form.querySelectorAll('button[type=submit]').forEach(function (b) {
        b.disabled = true;
        if (busyLabel) {
          b.textContent = busyLabel;
        }
      });
    });
  }

  function enhanceAccept(form) {
    var terms = document.getElementById('accept_terms');
    var button = document.getElementById('accept-button');
    var password = document.getElementById('password');
    var confirm = document.getElementById('password_confirm');
    form.noValidate = true; // this script validates, with messages next to the fields

    var hint = document.createElement('p');
    hint.className = 'button-hint';
    hint.id = 'accept-hint';
    hint.textContent = 'Accept the Terms of Service above to continue.';
    button.insertAdjacentElement('afterend', hint);
    button.setAttribute('aria-describedby', 'accept-hint');
    function syncButton() {
      button.disabled = !terms.checked;
      hint.hidden = terms.checked;
    }
    terms.addEventListener('change', function () {
      if (terms.checked) {
        setError(terms, '');
      }
      syncButton();
    });
    syncButton();

    if (password && confirm) {
      addReveal(password);
      addReveal(confirm);
      var items = Array.from(document.querySelectorAll('#policy li'));
      items.forEach(function (li) {
        var state = document.createElement('span');
        state.className = 'visually-hidden rule-state';
        li.appendChild(state);
      });
      var updatePolicy = function () {
        var value = password.value;
        items.forEach(function (li) {
          var ok = rules[li.dataset.rule](value);
          li.classList.toggle('met', ok);
          li.classList.toggle('unmet', value !== '' && !ok);
          li.querySelector('.rule-state').textContent = ok ? ' (done)' : ' (still needed)';
        });
      };
      var checkMatch = function (final) {
        var a = password.value;
        var b = confirm.value;
        // While the second one is being typed, a prefix of the first is no mistake yet.
        if (b === '' || a === b || (!final && a.indexOf(b) === 0)) {
          setError(confirm, '');
          return a === b;
        }
        setError(confirm, mismatchMessage);
        return false;
      };
      password.addEventListener('input', function () {
        updatePolicy();
        if (password.getAttribute('aria-invalid') && policyMessage(password.value) === '') {
          setError(password, '');
        }
        if (confirm.value !== '') {
          checkMatch(false);
        }
      });
      password.addEventListener('blur', function () {
        if (password.value !== '') {
          setError(password, policyMessage(password.value));
        }
      });
      confirm.addEventListener('input', function () { checkMatch(false); });
      confirm.addEventListener('blur', function () { checkMatch(true); });
      updatePolicy();
    } else if (password) { // an existing user signs in: their current password, no policy
      addReveal(password);
      password.addEventListener('input', function () { setError(password, ''); });
    }

    form.addEventListener('submit', function (event) {
      var first = null;
      if (password && confirm) {
        var message = policyMessage(password.value);
        setError(password, message);
        if (message) {
          first = password;
        } else if (!checkMatch(true)) {
          first = confirm;
        }
      } else if (password && password.value === '') {
        setError(password, 'Enter the password of your account.');
        first = password;
      }
      if (!terms.checked) {
        setError(terms, termsMessage);
        first = first || terms;
      }
      if (first) {
        event.preventDefault();
        first.focus();
      }
    });
    guardResubmit(form, 'Accepting…');
  }

  function init() {
    var accept = document.getElementById('accept-form');
    if (accept) {
      enhanceAccept(accept);
    }
    document.querySelectorAll('form:not(#accept-form)').forEach(function (form) { guardResubmit(form, ''); });
  }

  // Coming back through the history shows the page as it was left: send buttons usable again.
  window.addEventListener('pageshow', function (event) {
    if (!event.persisted) {
      return;
    }
    document.querySelectorAll('form[aria-busy]').forEach(function (form) {
      form.removeAttribute('aria-busy');
      form.querySelectorAll('button[type=submit]').forEach(function (b) { b.disabled = false; });
    });
    var terms = document.getElementById('accept_terms');
    var button = document.getElementById('accept-button');
    if (terms && button) {
      button.textContent = 'Accept invitation';
      button.disabled = !terms.checked;
    }
  });

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
}());
