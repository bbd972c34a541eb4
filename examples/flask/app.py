"""A Flask app that mounts the idflow OpenID Connect provider.

Every request under the app's root goes to ``Provider.handle``: discovery,
JWKS, authorize, token, userinfo, revoke, logout, the flow API and the hosted
login page. Routes of your own take precedence (``/admin/users`` below uses
the same provider's users management).

Run it:  pip install flask idflow
         IDFLOW_PROJECT=project.json flask --app examples/flask/app.py run --port 8080
"""

import os

from flask import Flask, Response, jsonify, request

import idflow


def create_app(project_path: str, *, database: str | None = None, base_url: str | None = None) -> Flask:
    provider = idflow.Provider.from_file(project_path, database=database, base_url=base_url)
    app = Flask(__name__)

    @app.get("/admin/users")
    def list_users():
        return jsonify(provider.engine.search_users(text=request.args.get("q")))

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST", "OPTIONS"])
    @app.route("/<path:path>", methods=["GET", "POST", "OPTIONS"])
    def oidc(path: str):
        target = request.full_path if request.query_string else request.path
        r = provider.handle(request.method, target, list(request.headers.items()), request.get_data(), peer=request.remote_addr)
        return Response(r.body, status=r.status, headers=r.headers)

    app.extensions["idflow"] = provider
    return app


if os.environ.get("IDFLOW_PROJECT"):
    app = create_app(
        os.environ["IDFLOW_PROJECT"],
        database=os.environ.get("IDFLOW_DB", "idflow.db"),
        base_url=os.environ.get("IDFLOW_BASE_URL"),
    )
