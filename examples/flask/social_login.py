"""Social login by API with a custom OAuth provider, in a Flask app.

The project file names the provider (``oauthProviders``) and approves where
a login may land (``redirectUrls``); idflow builds the upstream request,
answers the upstream at ``{baseUrl}/v1/oauth/callback`` (register that URL
there), and hands the app a one-time code that only the browser which
started the login can spend: the exchange needs the PKCE verifier kept in
that browser's session.
"""

from flask import Flask, Response, redirect, request, session

import idflow


def create_app(project_json: str, *, app_url: str, secret_key: str) -> Flask:
    provider = idflow.Provider(project_json)
    app = Flask(__name__)
    app.secret_key = secret_key

    @app.get("/login/<name>")
    def login(name: str):
        # Step 1: the upstream's authorization URL, and the verifier to keep.
        start = provider.oauth_authorize(name, redirect_url=f"{app_url}/after-login")
        session["idflow_verifier"] = start.code_verifier
        return redirect(start.url)

    @app.route("/v1/oauth/callback", methods=["GET", "POST"])
    def callback():
        # The upstream's answer goes to idflow, which sends the browser on.
        target = request.full_path if request.query_string else request.path
        r = provider.handle(request.method, target, list(request.headers.items()), request.get_data())
        return Response(r.body, status=r.status, headers=r.headers)

    @app.get("/after-login")
    def after_login():
        verifier = session.pop("idflow_verifier", None)
        if "error" in request.args:
            return {"error": request.args["error"]}, 401
        if verifier is None or "code" not in request.args:
            return {"error": "no sign-in was started in this browser"}, 400
        # Step 2: the one-time code and this browser's verifier → {sessionJwt, refreshJwt, user}.
        auth = provider.oauth_exchange(request.args["code"], verifier)
        session["user_id"] = auth["user"]["userId"]
        return {"user": auth["user"]}

    return app
