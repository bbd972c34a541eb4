"""Social login by API with a custom OAuth provider, in a Flask app.

The project file names the provider (``oauthProviders``); idflow builds the
upstream request, answers the upstream at ``{baseUrl}/v1/oauth/callback``
(register that URL there), and hands the app a one-time code.
"""

from flask import Flask, Response, redirect, request, session

import idflow


def create_app(project_json: str, *, app_url: str, secret_key: str) -> Flask:
    provider = idflow.Provider(project_json)
    app = Flask(__name__)
    app.secret_key = secret_key

    @app.get("/login/<name>")
    def login(name: str):
        # Step 1: the upstream's authorization URL (state, nonce, PKCE inside).
        return redirect(provider.oauth_authorize(name, redirect_url=f"{app_url}/after-login"))

    @app.route("/v1/oauth/callback", methods=["GET", "POST"])
    def callback():
        # The upstream's answer goes to idflow, which sends the browser on.
        target = request.full_path if request.query_string else request.path
        r = provider.handle(request.method, target, list(request.headers.items()), request.get_data())
        return Response(r.body, status=r.status, headers=r.headers)

    @app.get("/after-login")
    def after_login():
        if "error" in request.args:
            return {"error": request.args["error"]}, 401
        # Step 2: the one-time code → {sessionJwt, refreshJwt, user}.
        auth = provider.oauth_exchange(request.args["code"])
        session["user_id"] = auth["user"]["userId"]
        return {"user": auth["user"]}

    return app
